//! A validated set of units, keyed by name, with its dependency graph.

use std::collections::{BTreeMap, BTreeSet};

use crate::graph::{cycles, topological_order, Graph};
use crate::load::network_target_problem;
use crate::model::Unit;
use crate::name::check_unit_name;
use crate::suggest::did_you_mean;

/// Every unit of a unit directory, validated together: every dependency names a unit of the
/// set and the `after` graph has no cycle.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnitSet {
    units: BTreeMap<String, Unit>,
}

impl UnitSet {
    /// Builds a set from units made by code, checking what [`crate::load_paths`] checks
    /// across units: valid and unique names, dependencies on units of the set, no unit
    /// depending on itself, no cycle, a `container.network = unit:NAME` naming a container
    /// with a network namespace of its own. The unit named by `container.network =
    /// unit:NAME` is added to `requires` if missing, and every `requires` entry missing
    /// from `after` is added to it (requires implies after). The errors are messages such as
    /// `unit "web": service.requires: unknown unit "dbb"; did you mean "db"?` or
    /// `dependency cycle: a -> b -> a`.
    pub fn from_units(units: Vec<Unit>) -> Result<UnitSet, Vec<String>> {
        let mut errors = Vec::new();
        let mut map = BTreeMap::new();
        for mut unit in units {
            if let Err(e) = check_unit_name(&unit.name) {
                errors.push(e.to_string());
            }
            if let Some(dep) = unit.container.as_ref().and_then(|c| c.network_unit()) {
                // Joining a unit's network namespace requires it.
                if !unit.service.requires.iter().any(|r| r == dep) {
                    unit.service.requires.push(dep.to_string());
                }
            }
            for r in &unit.service.requires {
                if !unit.service.after.contains(r) {
                    unit.service.after.push(r.clone());
                }
            }
            if map.contains_key(&unit.name) {
                errors.push(format!("duplicate unit {:?}", unit.name));
            } else {
                map.insert(unit.name.clone(), unit);
            }
        }
        for unit in map.values() {
            for (field, deps) in [
                ("after", &unit.service.after),
                ("requires", &unit.service.requires),
            ] {
                for dep in deps {
                    if field == "after" && unit.service.requires.contains(dep) {
                        continue; // reported once, as a `requires` entry
                    }
                    let network = unit.container.as_ref().and_then(|c| c.network_unit());
                    if network == Some(dep.as_str()) && !map.contains_key(dep) {
                        continue; // reported below, as `container.network`
                    }
                    let prefix = format!("unit {:?}: service.{field}", unit.name);
                    if *dep == unit.name {
                        errors.push(format!("{prefix}: a unit cannot depend on itself"));
                    } else if !map.contains_key(dep) {
                        let hint = did_you_mean(dep, map.keys().map(String::as_str));
                        errors.push(format!("{prefix}: unknown unit {dep:?}{hint}"));
                    }
                }
            }
        }
        for unit in map.values() {
            let Some(dep) = unit.container.as_ref().and_then(|c| c.network_unit()) else {
                continue;
            };
            let problem = match map.get(dep) {
                None => {
                    let hint = did_you_mean(dep, map.keys().map(String::as_str));
                    Some(format!("unknown unit {dep:?}{hint}"))
                }
                Some(target) => network_target_problem(target),
            };
            if let Some(problem) = problem {
                errors.push(format!(
                    "unit {:?}: container.network: {problem}",
                    unit.name
                ));
            }
        }
        let set = UnitSet { units: map };
        for cycle in cycles(&set.graph()) {
            errors.push(format!("dependency cycle: {}", cycle.join(" -> ")));
        }
        if errors.is_empty() {
            Ok(set)
        } else {
            Err(errors)
        }
    }

    /// A set of units already validated together (by the loader).
    pub(crate) fn from_validated(units: BTreeMap<String, Unit>) -> UnitSet {
        UnitSet { units }
    }

    fn graph(&self) -> Graph {
        self.units
            .iter()
            .map(|(n, u)| (n.clone(), u.service.after.clone()))
            .collect()
    }

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

    /// Every unit, each after all the units it starts after (`after`, which includes
    /// `requires`); among the units that could come next, the smallest name first. The
    /// reverse is a stop order.
    pub fn start_order(&self) -> Vec<&str> {
        topological_order(&self.graph())
            .iter()
            .filter_map(|n| {
                self.units
                    .get_key_value(n.as_str())
                    .map(|(k, _)| k.as_str())
            })
            .collect()
    }

    /// The units `name` starts after (its `after`, which includes `requires`); empty for
    /// an unknown name.
    pub fn dependencies(&self, name: &str) -> &[String] {
        self.units
            .get(name)
            .map_or(&[], |u| u.service.after.as_slice())
    }

    /// The units that start after `name` (whose `after` contains it), in name order.
    pub fn dependents(&self, name: &str) -> Vec<&str> {
        self.units
            .values()
            .filter(|u| u.service.after.iter().any(|d| d == name))
            .map(|u| u.name.as_str())
            .collect()
    }

    /// The units that require `name` (whose `requires` contains it), in name order.
    pub fn requirers(&self, name: &str) -> Vec<&str> {
        self.units
            .values()
            .filter(|u| u.service.requires.iter().any(|d| d == name))
            .map(|u| u.name.as_str())
            .collect()
    }

    /// Everything that must stop if `names` stop: the given names that are in the set,
    /// plus every unit that requires one of them, transitively.
    pub fn requirers_closure<'a, I>(&self, names: I) -> BTreeSet<String>
    where
        I: IntoIterator<Item = &'a str>,
    {
        let mut out = BTreeSet::new();
        let mut todo: Vec<&str> = names
            .into_iter()
            .filter(|n| self.units.contains_key(*n))
            .collect();
        while let Some(name) = todo.pop() {
            if out.insert(name.to_string()) {
                todo.extend(self.requirers(name));
            }
        }
        out
    }
}
