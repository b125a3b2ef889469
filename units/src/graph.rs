//! Graph algorithms over the `after` relation: cycles (as paths to report) and a
//! deterministic topological order.
//!
//! A graph maps each unit to the units it starts after, in file order. Edges to names that
//! are not keys of the map, and self-edges, are ignored (they are reported elsewhere).

use std::collections::{BTreeMap, BTreeSet, VecDeque};

pub(crate) type Graph = BTreeMap<String, Vec<String>>;

/// One path per strongly connected component that has a cycle: `[a, b, c, a]`, starting at
/// the smallest name of the component and following a shortest way back to it. Sorted by
/// that first name.
pub(crate) fn cycles(graph: &Graph) -> Vec<Vec<String>> {
    let names: Vec<&str> = graph.keys().map(String::as_str).collect();
    let index: BTreeMap<&str, usize> = names.iter().enumerate().map(|(i, n)| (*n, i)).collect();
    let succ: Vec<Vec<usize>> = names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            graph[*n]
                .iter()
                .filter_map(|d| index.get(d.as_str()).copied())
                .filter(|&j| j != i)
                .collect()
        })
        .collect();
    let mut paths = Vec::new();
    for component in strongly_connected(&succ) {
        if component.len() < 2 {
            continue;
        }
        let members: BTreeSet<usize> = component.iter().copied().collect();
        let Some(&start) = members.first() else {
            continue;
        };
        if let Some(path) = shortest_cycle(&succ, &members, start) {
            paths.push(path.into_iter().map(|i| names[i].to_string()).collect());
        }
    }
    paths.sort();
    paths
}

/// Tarjan's algorithm, iterative (no recursion depth limit on long chains).
fn strongly_connected(succ: &[Vec<usize>]) -> Vec<Vec<usize>> {
    let n = succ.len();
    let mut index = vec![usize::MAX; n];
    let mut low = vec![0; n];
    let mut on_stack = vec![false; n];
    let mut stack = Vec::new();
    let mut components = Vec::new();
    let mut next = 0;
    for root in 0..n {
        if index[root] != usize::MAX {
            continue;
        }
        // (node, position in its successor list)
        let mut work = vec![(root, 0)];
        while let Some(&(v, pos)) = work.last() {
            if pos == 0 && index[v] == usize::MAX {
                index[v] = next;
                low[v] = next;
                next += 1;
                stack.push(v);
                on_stack[v] = true;
            }
            if let Some(&w) = succ[v].get(pos) {
                if let Some(top) = work.last_mut() {
                    top.1 += 1;
                }
                if index[w] == usize::MAX {
                    work.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
                continue;
            }
            work.pop();
            if let Some(&(parent, _)) = work.last() {
                low[parent] = low[parent].min(low[v]);
            }
            if low[v] == index[v] {
                let mut component = Vec::new();
                while let Some(w) = stack.pop() {
                    on_stack[w] = false;
                    component.push(w);
                    if w == v {
                        break;
                    }
                }
                components.push(component);
            }
        }
    }
    components
}

/// A shortest path start -> ... -> start inside `members` (breadth first).
fn shortest_cycle(
    succ: &[Vec<usize>],
    members: &BTreeSet<usize>,
    start: usize,
) -> Option<Vec<usize>> {
    let mut parent: BTreeMap<usize, usize> = BTreeMap::new();
    let mut queue = VecDeque::from([start]);
    while let Some(v) = queue.pop_front() {
        for &w in &succ[v] {
            if w == start {
                let mut path = vec![start, v];
                let mut cur = v;
                while cur != start {
                    cur = *parent.get(&cur)?;
                    path.push(cur);
                }
                path.reverse();
                return Some(path);
            }
            if members.contains(&w) && !parent.contains_key(&w) {
                parent.insert(w, v);
                queue.push_back(w);
            }
        }
    }
    None
}

/// Every unit after the units it starts after; among the units that could come next, the
/// smallest name first. Units on a cycle (which a validated set has not) come last, by name.
pub(crate) fn topological_order(graph: &Graph) -> Vec<String> {
    let mut waiting: BTreeMap<&str, usize> = BTreeMap::new();
    let mut dependents: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (name, deps) in graph {
        let deps: BTreeSet<&str> = deps
            .iter()
            .map(String::as_str)
            .filter(|d| graph.contains_key(*d) && d != name)
            .collect();
        waiting.insert(name, deps.len());
        for d in deps {
            dependents.entry(d).or_default().push(name);
        }
    }
    let mut ready: BTreeSet<&str> = waiting
        .iter()
        .filter(|(_, &n)| n == 0)
        .map(|(k, _)| *k)
        .collect();
    let mut order = Vec::with_capacity(graph.len());
    while let Some(name) = ready.pop_first() {
        order.push(name.to_string());
        waiting.remove(name);
        for &d in dependents.get(name).map_or(&[][..], Vec::as_slice) {
            if let Some(n) = waiting.get_mut(d) {
                *n -= 1;
                if *n == 0 {
                    ready.insert(d);
                }
            }
        }
    }
    order.extend(waiting.keys().map(|k| k.to_string()));
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(edges: &[(&str, &[&str])]) -> Graph {
        edges
            .iter()
            .map(|(n, d)| (n.to_string(), d.iter().map(|s| s.to_string()).collect()))
            .collect()
    }

    #[test]
    fn finds_each_cycle_once_from_its_smallest_name() {
        let g = graph(&[
            ("c", &["a"]),
            ("a", &["b"]),
            ("b", &["c"]),
            ("x", &["y"]),
            ("y", &["x"]),
            ("z", &["z"]),
        ]);
        assert_eq!(
            cycles(&g),
            vec![vec!["a", "b", "c", "a"], vec!["x", "y", "x"]]
        );
    }

    #[test]
    fn shortest_way_back() {
        let g = graph(&[
            ("a", &["b", "d"]),
            ("b", &["c"]),
            ("c", &["a"]),
            ("d", &["a"]),
        ]);
        assert_eq!(cycles(&g), vec![vec!["a", "d", "a"]]);
    }

    #[test]
    fn no_cycle_in_a_dag() {
        let g = graph(&[
            ("a", &["b", "c"]),
            ("b", &["c"]),
            ("c", &[]),
            ("d", &["missing"]),
        ]);
        assert!(cycles(&g).is_empty());
        assert_eq!(topological_order(&g), ["c", "b", "a", "d"]);
    }

    #[test]
    fn long_chain_does_not_recurse() {
        let names: Vec<String> = (0..20_000).map(|i| format!("u{i:05}")).collect();
        let mut g: Graph = names
            .windows(2)
            .map(|w| (w[0].clone(), vec![w[1].clone()]))
            .collect();
        g.insert(names[19_999].clone(), vec![names[0].clone()]);
        assert_eq!(cycles(&g)[0].len(), 20_001);
    }
}
