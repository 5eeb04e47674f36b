//! Bundles: offerings that subscribing to another offering also grants.
//!
//! Bundles must name existing offerings of other families and must never form
//! a cycle, or creating a subscription would never finish creating children.

use std::collections::{HashMap, HashSet};

use crate::error::{Reason, Violations};
use crate::text::Code;

/// What the graph needs to know about one existing offering.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BundleNode {
    pub family: Code,
    pub bundled_offering_codes: Vec<Code>,
}

/// The bundle relation of the existing catalog: offering code → its node.
#[derive(Clone, Debug, Default)]
pub struct BundleGraph(HashMap<Code, BundleNode>);

impl BundleGraph {
    pub fn new(nodes: impl IntoIterator<Item = (Code, BundleNode)>) -> Self {
        BundleGraph(nodes.into_iter().collect())
    }

    /// Checks the bundles of a new offering `code` of `family`, given with
    /// their positions in the request; violations are recorded as
    /// `bundled_offering_codes[i]`.
    pub(crate) fn check_new(&self, code: &Code, family: &Code, bundled: &[(usize, Code)], violations: &mut Violations) {
        for (index, bundled_code) in bundled {
            let field = format!("bundled_offering_codes[{index}]");
            if bundled_code == code || self.reaches(bundled_code, code) {
                violations.push(
                    field,
                    Reason::BundleCycle,
                    format!("bundling {bundled_code} would make {code} bundle itself"),
                );
                continue;
            }
            let Some(node) = self.0.get(bundled_code) else {
                violations.push(
                    field,
                    Reason::BundledOfferingNotFound,
                    format!("no offering has code {bundled_code}"),
                );
                continue;
            };
            if &node.family == family {
                violations.push(
                    field,
                    Reason::FieldInvalid,
                    format!("{bundled_code} is in family {family} too; a business holds one subscription per family"),
                );
            }
        }
    }

    /// Whether `target` is reachable from `start` through bundles.
    fn reaches(&self, start: &Code, target: &Code) -> bool {
        let mut stack = vec![start];
        let mut visited = HashSet::new();
        while let Some(current) = stack.pop() {
            if !visited.insert(current) {
                continue;
            }
            let Some(node) = self.0.get(current) else {
                continue;
            };
            for next in &node.bundled_offering_codes {
                if next == target {
                    return true;
                }
                stack.push(next);
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(text: &str) -> Code {
        Code::parse(text).unwrap()
    }

    fn graph(edges: &[(&str, &[&str])]) -> BundleGraph {
        BundleGraph::new(edges.iter().map(|(from, to)| {
            (
                code(from),
                BundleNode {
                    family: code(from),
                    bundled_offering_codes: to.iter().map(|t| code(t)).collect(),
                },
            )
        }))
    }

    fn reasons(graph: &BundleGraph, new: &str, family: &str, bundled: &[&str]) -> Vec<(String, Reason)> {
        let mut violations = Violations::new();
        let bundled: Vec<(usize, Code)> = bundled.iter().map(|b| code(b)).enumerate().collect();
        graph.check_new(&code(new), &code(family), &bundled, &mut violations);
        match violations.into_result() {
            Ok(()) => Vec::new(),
            Err(error) => error.violations().iter().map(|v| (v.field.clone(), v.reason)).collect(),
        }
    }

    #[test]
    fn existing_acyclic_bundles_are_accepted() {
        let graph = graph(&[("seo", &[]), ("support", &["seo"])]);
        assert!(reasons(&graph, "pro", "package", &["support", "seo"]).is_empty());
    }

    #[test]
    fn unknown_bundled_offering_is_named() {
        let graph = graph(&[("seo", &[])]);
        assert_eq!(
            reasons(&graph, "pro", "package", &["seo", "ghost"]),
            [("bundled_offering_codes[1]".to_owned(), Reason::BundledOfferingNotFound)]
        );
    }

    #[test]
    fn self_bundle_is_a_cycle() {
        assert_eq!(
            reasons(&BundleGraph::default(), "pro", "package", &["pro"]),
            [("bundled_offering_codes[0]".to_owned(), Reason::BundleCycle)]
        );
    }

    #[test]
    fn indirect_cycles_are_found() {
        // An existing catalog where a → b → c, and c is being (re)defined to bundle a.
        let graph = graph(&[("a", &["b"]), ("b", &["c"])]);
        assert_eq!(
            reasons(&graph, "c", "c", &["a"]),
            [("bundled_offering_codes[0]".to_owned(), Reason::BundleCycle)]
        );
    }

    #[test]
    fn bundling_an_offering_of_the_same_family_is_rejected() {
        let graph = BundleGraph::new([(
            code("pro-yearly"),
            BundleNode {
                family: code("package"),
                bundled_offering_codes: vec![],
            },
        )]);
        assert_eq!(
            reasons(&graph, "pro-monthly", "package", &["pro-yearly"]),
            [("bundled_offering_codes[0]".to_owned(), Reason::FieldInvalid)]
        );
    }
}
