//! Table mappings. Private to the crate: nothing outside sees a row type.

pub mod coupons;
pub mod directory_offerings;
pub mod offerings;
pub mod products;
