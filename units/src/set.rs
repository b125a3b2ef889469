//! A validated set of units, keyed by name, with its dependency graph.

use std::collections::BTreeMap;

use crate::model::Unit;

/// Every unit of a unit directory, validated together: every dependency names a unit of the
/// set and the `after` graph has no cycle.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnitSet {
    units: BTreeMap<String, Unit>,
}

impl UnitSet {
    /// Look a unit up by name.
    pub fn get(&self, name: &str) -> Option<&Unit> {
        self.units.get(name)
    }

    /// Units in name order.
    pub fn iter(&self) -> impl Iterator<Item = &Unit> {
        self.units.values()
    }

    /// Names in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.units.keys().map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.units.len()
    }

    pub fn is_empty(&self) -> bool {
        self.units.is_empty()
    }
}
