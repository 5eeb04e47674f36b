//! Products, offerings, directory assignments and coupons.

use std::collections::HashSet;

use billing_domain::catalog::{BundleGraph, BundleNode, Coupon, DirectoryOffering, Offering, OfferingStatus, Product};
use billing_domain::ids::OfferingId;
use billing_domain::text::{Code, ExternalId};
use sea_orm::sea_query::{IntoCondition, OnConflict, Query};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, QueryTrait, Select};

use crate::entity::{coupons, directory_offerings, offerings, products};
use crate::error::StorageError;
use crate::rows::RowContext;
use crate::{Backend, rows};

/// How to find one offering.
#[derive(Clone, Copy, Debug)]
pub enum OfferingKey<'a> {
    Id(&'a OfferingId),
    Code(&'a Code),
}

/// Which offerings a list returns.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OfferingFilter {
    /// Only those assigned to this directory.
    pub directory_id: Option<ExternalId>,
    /// Also HIDDEN and RETIRED ones.
    pub include_hidden: bool,
}

/// The catalog tables, read and written through a pool or a transaction.
///
/// Lists are keyset-paged: they return up to `limit` rows ordered by id (ids
/// sort by creation time) strictly after the `after` id.
pub struct CatalogStore<'a, C> {
    conn: &'a C,
    backend: Backend,
}

impl<'a, C: ConnectionTrait> CatalogStore<'a, C> {
    pub(crate) fn new(conn: &'a C, backend: Backend) -> Self {
        CatalogStore { conn, backend }
    }

    pub async fn insert_product(&self, product: &Product) -> Result<(), StorageError> {
        products::Entity::insert(rows::product_to_row(product))
            .exec(self.conn)
            .await?;
        Ok(())
    }

    /// Products, keyset-paged by id; with `codes`, only those.
    pub async fn list_products(
        &self,
        codes: Option<&[Code]>,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Vec<Product>, StorageError> {
        let query = products::Entity::find().apply_if(codes, |query, codes| {
            query.filter(products::Column::Code.is_in(codes.iter().map(Code::as_str)))
        });
        keyset_page(
            self.conn,
            query,
            products::Column::Id,
            after,
            limit,
            rows::product_from_row,
        )
        .await
    }

    /// Which of `codes` name existing products.
    pub async fn existing_product_codes(&self, codes: &[Code]) -> Result<HashSet<Code>, StorageError> {
        existing_codes::<products::Entity, _>(self.conn, products::Column::Code, codes).await
    }

    /// Which of `codes` name existing offerings.
    pub async fn existing_offering_codes(&self, codes: &[Code]) -> Result<HashSet<Code>, StorageError> {
        existing_codes::<offerings::Entity, _>(self.conn, offerings::Column::Code, codes).await
    }

    /// The bundle relation of the whole catalog. Catalogs hold hundreds of
    /// offerings, not millions, and the graph is read only when an offering
    /// is created.
    pub async fn bundle_graph(&self) -> Result<BundleGraph, StorageError> {
        let edges: Vec<(String, String, serde_json::Value)> = offerings::Entity::find()
            .select_only()
            .column(offerings::Column::Code)
            .column(offerings::Column::Family)
            .column(offerings::Column::BundledOfferingCodes)
            .into_tuple()
            .all(self.conn)
            .await?;
        let nodes = edges
            .into_iter()
            .map(|(code, family, bundled)| {
                let context = RowContext::new("offerings", &code);
                let bundled: Vec<String> = serde_json::from_value(bundled).map_err(|error| context.corrupt(error))?;
                let node = BundleNode {
                    family: context.code(&family)?,
                    bundled_offering_codes: bundled
                        .iter()
                        .map(|text| context.code(text))
                        .collect::<Result<_, _>>()?,
                };
                Ok((context.code(&code)?, node))
            })
            .collect::<Result<Vec<_>, StorageError>>()?;
        Ok(BundleGraph::new(nodes))
    }

    pub async fn insert_offering(&self, offering: &Offering) -> Result<(), StorageError> {
        offerings::Entity::insert(rows::offering_to_row(offering))
            .exec(self.conn)
            .await?;
        Ok(())
    }

    pub async fn get_offering(&self, key: OfferingKey<'_>) -> Result<Option<Offering>, StorageError> {
        self.find_offering(key, false).await
    }

    /// Like [`Self::get_offering`], and on Postgres locks the row until the
    /// transaction ends, so a read-modify-write cannot lose a concurrent
    /// update. (SQLite runs one transaction at a time.)
    pub async fn get_offering_for_update(&self, key: OfferingKey<'_>) -> Result<Option<Offering>, StorageError> {
        self.find_offering(key, true).await
    }

    async fn find_offering(&self, key: OfferingKey<'_>, for_update: bool) -> Result<Option<Offering>, StorageError> {
        let query = match key {
            OfferingKey::Id(id) => offerings::Entity::find_by_id(id.as_str().to_owned()),
            OfferingKey::Code(code) => offerings::Entity::find().filter(offerings::Column::Code.eq(code.as_str())),
        };
        let lock = for_update && self.backend == Backend::Postgres;
        let row = query
            .apply_if(lock.then_some(()), |query, ()| query.lock_exclusive())
            .one(self.conn)
            .await?;
        row.map(rows::offering_from_row).transpose()
    }

    /// Writes every field of an offering that exists.
    pub async fn update_offering(&self, offering: &Offering) -> Result<(), StorageError> {
        offerings::Entity::update(rows::offering_to_row(offering))
            .exec(self.conn)
            .await?;
        Ok(())
    }

    /// Freezes the offerings' prices, in one statement: called whenever
    /// subscriptions on them are written.
    /// An offering already frozen is left untouched (no row rewrite, no lock
    /// held on a hot row: this runs with every change of a subscription).
    pub async fn mark_offerings_have_subscriptions(&self, ids: &[&OfferingId]) -> Result<(), StorageError> {
        if ids.is_empty() {
            return Ok(());
        }
        offerings::Entity::update_many()
            .col_expr(offerings::Column::HasSubscriptions, true.into())
            .filter(offerings::Column::Id.is_in(ids.iter().map(|id| id.as_str())))
            .filter(offerings::Column::HasSubscriptions.eq(false))
            .exec(self.conn)
            .await?;
        Ok(())
    }

    pub async fn list_offerings(
        &self,
        filter: &OfferingFilter,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Vec<Offering>, StorageError> {
        let query = offerings::Entity::find()
            .apply_if((!filter.include_hidden).then_some(()), |query, ()| {
                query.filter(offerings::Column::Status.eq(OfferingStatus::Active.as_str()))
            })
            .apply_if(filter.directory_id.as_ref(), |query, directory_id| {
                query.filter(offerings::Column::Id.in_subquery(assigned_offering_ids(directory_id, false)))
            });
        keyset_page(
            self.conn,
            query,
            offerings::Column::Id,
            after,
            limit,
            rows::offering_from_row,
        )
        .await
    }

    /// The offerings a directory gives by default.
    pub async fn directory_default_offerings(&self, directory_id: &ExternalId) -> Result<Vec<Offering>, StorageError> {
        self.offerings_where(offerings::Column::Id.in_subquery(assigned_offering_ids(directory_id, true)))
            .await
    }

    /// Every offering matching `condition`, in id order.
    async fn offerings_where(&self, condition: impl IntoCondition) -> Result<Vec<Offering>, StorageError> {
        offerings::Entity::find()
            .filter(condition)
            .order_by_asc(offerings::Column::Id)
            .all(self.conn)
            .await?
            .into_iter()
            .map(rows::offering_from_row)
            .collect()
    }

    pub async fn get_directory_offering(
        &self,
        directory_id: &ExternalId,
        offering_id: &OfferingId,
    ) -> Result<Option<DirectoryOffering>, StorageError> {
        directory_offerings::Entity::find_by_id((directory_id.as_str().to_owned(), offering_id.as_str().to_owned()))
            .one(self.conn)
            .await?
            .map(rows::directory_offering_from_row)
            .transpose()
    }

    /// Inserts the assignment, or updates `is_default` of an existing one.
    pub async fn upsert_directory_offering(&self, assignment: &DirectoryOffering) -> Result<(), StorageError> {
        let on_conflict = OnConflict::columns([
            directory_offerings::Column::DirectoryId,
            directory_offerings::Column::OfferingId,
        ])
        .update_columns([
            directory_offerings::Column::IsDefault,
            directory_offerings::Column::UpdateTime,
        ])
        .to_owned();
        directory_offerings::Entity::insert(rows::directory_offering_to_row(assignment))
            .on_conflict(on_conflict)
            .exec(self.conn)
            .await?;
        Ok(())
    }

    /// A directory's assignments, keyset-paged by offering id.
    pub async fn list_directory_offerings(
        &self,
        directory_id: &ExternalId,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Vec<DirectoryOffering>, StorageError> {
        let query = directory_offerings::Entity::find()
            .filter(directory_offerings::Column::DirectoryId.eq(directory_id.as_str()));
        let key = directory_offerings::Column::OfferingId;
        keyset_page(self.conn, query, key, after, limit, rows::directory_offering_from_row).await
    }

    pub async fn insert_coupon(&self, coupon: &Coupon) -> Result<(), StorageError> {
        coupons::Entity::insert(rows::coupon_to_row(coupon))
            .exec(self.conn)
            .await?;
        Ok(())
    }

    pub async fn get_coupon_by_code(&self, code: &Code) -> Result<Option<Coupon>, StorageError> {
        coupons::Entity::find()
            .filter(coupons::Column::Code.eq(code.as_str()))
            .one(self.conn)
            .await?
            .map(rows::coupon_from_row)
            .transpose()
    }

    /// Counts one redemption of a coupon.
    pub async fn record_coupon_redemption(&self, code: &Code) -> Result<(), StorageError> {
        coupons::Entity::update_many()
            .col_expr(
                coupons::Column::TimesRedeemed,
                sea_orm::sea_query::ExprTrait::add(sea_orm::sea_query::Expr::col(coupons::Column::TimesRedeemed), 1),
            )
            .filter(coupons::Column::Code.eq(code.as_str()))
            .exec(self.conn)
            .await?;
        Ok(())
    }

    /// The offerings with these ids (those that exist), in id order.
    pub async fn offerings_by_ids(&self, ids: &[OfferingId]) -> Result<Vec<Offering>, StorageError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        self.offerings_where(offerings::Column::Id.is_in(ids.iter().map(OfferingId::as_str)))
            .await
    }

    pub async fn list_coupons(&self, after: Option<&str>, limit: u64) -> Result<Vec<Coupon>, StorageError> {
        let query = coupons::Entity::find();
        keyset_page(
            self.conn,
            query,
            coupons::Column::Id,
            after,
            limit,
            rows::coupon_from_row,
        )
        .await
    }
}

/// One keyset page of `query`: rows whose `key` is after `after`, in key
/// order, at most `limit`, each turned into a domain value by `into_domain`.
pub(crate) async fn keyset_page<E, C, T>(
    conn: &C,
    query: Select<E>,
    key: E::Column,
    after: Option<&str>,
    limit: u64,
    into_domain: impl Fn(E::Model) -> Result<T, StorageError>,
) -> Result<Vec<T>, StorageError>
where
    E: EntityTrait,
    C: ConnectionTrait,
{
    query
        .apply_if(after, |query, after| query.filter(key.gt(after)))
        .order_by_asc(key)
        .limit(limit)
        .all(conn)
        .await?
        .into_iter()
        .map(into_domain)
        .collect()
}

/// Which of `codes` appear in the `code` column of entity `E`.
async fn existing_codes<E, C>(conn: &C, code: E::Column, codes: &[Code]) -> Result<HashSet<Code>, StorageError>
where
    E: EntityTrait,
    C: ConnectionTrait,
{
    if codes.is_empty() {
        return Ok(HashSet::new());
    }
    let found: Vec<String> = E::find()
        .select_only()
        .column(code)
        .filter(code.is_in(codes.iter().map(Code::as_str)))
        .into_tuple()
        .all(conn)
        .await?;
    Ok(codes
        .iter()
        .filter(|code| found.iter().any(|text| text == code.as_str()))
        .cloned()
        .collect())
}

/// `SELECT offering_id FROM directory_offerings WHERE directory_id = ? [AND is_default]`.
fn assigned_offering_ids(directory_id: &ExternalId, defaults_only: bool) -> sea_orm::sea_query::SelectStatement {
    let mut query = Query::select();
    query
        .column(directory_offerings::Column::OfferingId)
        .from(directory_offerings::Entity)
        .and_where(directory_offerings::Column::DirectoryId.eq(directory_id.as_str()));
    if defaults_only {
        query.and_where(directory_offerings::Column::IsDefault.eq(true));
    }
    query
}
