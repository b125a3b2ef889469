//! What a benchmark report (`performance.json` and `performance.md`, written by
//! `bench/run.sh`) must hold to show that the benchmark measured something: for every peer
//! it reports, runs whose times are positive and finite and a summary that agrees with
//! them; the footprint, reaping and container entry point's memory figures positive; and
//! the targets' ratio lines (kennel against crun, start and exec; kennel as a container's
//! PID 1 against s6 and tini, memory; the disk boot against systemd's) present and equal to
//! the ratio of the reported figures.
//! Never a bound on a time: a benchmark is not a test assert.

use serde_json::Value;

/// The sections every run of the benchmark (`--quick` too) measures.
const REQUIRED: [&str; 6] = [
    "start",
    "exec",
    "footprint",
    "entrypoint",
    "net",
    "ocipodman",
];

/// The targets' ratio lines: the row's start in the Targets table, the section, kennel's
/// peer name and crun's.
const RATIOS: [(&str, &str, &str, &str); 2] = [
    ("| container start", "start", "kennel", "crun run"),
    ("| exec", "exec", "kennel exec", "crun exec"),
];

/// The container entry point's ratio lines: the row's start, the memory kind, kennel's
/// services, the peer and its services (bench/entrypoint.py, the static kennel).
const ENTRY_RATIOS: [(&str, &str, &str, &str, &str); 4] = [
    (
        "| container PID 1, 10 services: PSS",
        "pss_kb",
        "10",
        "s6",
        "10",
    ),
    (
        "| container PID 1, 10 services: RSS",
        "rss_kb",
        "10",
        "s6",
        "10",
    ),
    (
        "| container PID 1, 1 service: PSS",
        "pss_kb",
        "1",
        "tini",
        "1",
    ),
    (
        "| container PID 1, 1 service: RSS",
        "rss_kb",
        "1",
        "tini",
        "1",
    ),
];

/// Everything wrong with the report (none: it holds what it must).
pub fn problems(json: &str, md: &str) -> Vec<String> {
    let mut bad = Vec::new();
    let r: Value = match serde_json::from_str(json) {
        Ok(r) => r,
        // Python writes NaN for the median of no runs; JSON has no NaN.
        Err(e) => return vec![format!("performance.json does not parse ({e}): a NaN?")],
    };
    for s in REQUIRED {
        if r.get(s).is_none() {
            bad.push(format!("no {s:?} section"));
        }
    }
    for section in ["start", "exec", "status"] {
        let Some(peers) = r.get(section) else {
            continue;
        };
        let Some(peers) = peers.as_object().filter(|p| !p.is_empty()) else {
            bad.push(format!("{section}: no peers"));
            continue;
        };
        for (peer, v) in peers {
            series(&format!("{section}: {peer}"), v, &mut bad);
        }
    }
    // podman with each runtime (bench/ocipodman.py): its run and exec series.
    for measure in ["run", "exec"] {
        let runtimes = r.get("ocipodman").map(|o| &o[measure]);
        for (rt, v) in runtimes.and_then(Value::as_object).into_iter().flatten() {
            series(&format!("ocipodman {measure}: {rt}"), v, &mut bad);
        }
    }
    if let Some(fp) = r.get("footprint").and_then(Value::as_object) {
        for (units, peers) in fp {
            for (peer, v) in peers.as_object().into_iter().flatten() {
                positive(
                    &format!("footprint {units}: {peer} rss_kb"),
                    &v["rss_kb"],
                    &mut bad,
                );
            }
        }
    }
    if let Some(reaping) = r.get("reaping").and_then(Value::as_object) {
        for (peer, v) in reaping.iter().filter(|(k, _)| *k != "n") {
            positive(&format!("reaping: {peer} per_s"), &v["per_s"], &mut bad);
        }
    }
    if let Some(ep) = r.get("entrypoint") {
        entrypoint(ep, md, &mut bad);
    }
    if let Some(disk) = r.get("disk") {
        disk_boot(disk, md, &mut bad);
    }
    if let Some(net) = r.get("net") {
        networks(net, md, &mut bad);
    }
    for (row, section, kennel, crun) in RATIOS {
        let p50 = |peer: &str| r[section][peer]["p50"].as_f64();
        let (Some(k), Some(c)) = (p50(kennel), p50(crun)) else {
            bad.push(format!("{section}: no p50 of {kennel:?} and {crun:?}"));
            continue;
        };
        match ratio_in(md, row) {
            None => bad.push(format!("performance.md: no row {row:?} with a (ratio X)")),
            Some(x) if !(x.is_finite() && x > 0.0) => {
                bad.push(format!("{row}: ratio {x} is not a positive number"))
            }
            // bench.py prints it with two decimals.
            Some(x) if (x - k / c).abs() > 0.006 => bad.push(format!(
                "{row}: ratio {x} is not {kennel} {k} / {crun} {c} = {:.3}",
                k / c
            )),
            Some(_) => {}
        }
    }
    bad
}

/// The container entry point: memory of every PID 1 positive, times to all up a series,
/// and the goals' ratio lines those of the reported medians.
fn entrypoint(ep: &Value, md: &str, bad: &mut Vec<String>) {
    match ep["memory"].as_object().filter(|m| !m.is_empty()) {
        None => bad.push("entrypoint: no memory".into()),
        Some(m) => {
            for (tool, sizes) in m {
                for (n, v) in sizes.as_object().into_iter().flatten() {
                    for kind in ["rss_kb", "pss_kb"] {
                        positive(&format!("entrypoint {tool} {n}: {kind}"), &v[kind], bad);
                    }
                }
            }
        }
    }
    match ep["up"].as_object().filter(|u| !u.is_empty()) {
        None => bad.push("entrypoint: no times to all up".into()),
        Some(up) => {
            for (n, tools) in up {
                for (tool, v) in tools.as_object().into_iter().flatten() {
                    series(&format!("entrypoint up {n}: {tool}"), v, bad);
                }
            }
        }
    }
    for (row, kind, n, peer, pn) in ENTRY_RATIOS {
        let (Some(k), Some(p)) = (
            ep["memory"]["kennel"][n][kind].as_f64(),
            ep["memory"][peer][pn][kind].as_f64(),
        ) else {
            bad.push(format!(
                "entrypoint: no {kind} of kennel ({n}) and {peer} ({pn})"
            ));
            continue;
        };
        match ratio_in(md, row) {
            None => bad.push(format!("performance.md: no row {row:?} with a (ratio X)")),
            Some(x) if (x - k / p).abs() > 0.006 => bad.push(format!(
                "{row}: ratio {x} is not kennel {k} / {peer} {p} = {:.3}",
                k / p
            )),
            Some(_) => {}
        }
    }
}

/// The disk boot (bench/disk.py): a series of boot times for each init, and the target's
/// ratio line (kennel / systemd) that of the reported medians.
fn disk_boot(disk: &Value, md: &str, bad: &mut Vec<String>) {
    for init in ["kennel", "systemd", "busybox init"] {
        series(&format!("disk: {init}"), &disk["boots"][init], bad);
    }
    let row = "| disk boot to the daemon answering";
    let (Some(k), Some(s)) = (
        disk["boots"]["kennel"]["p50"].as_f64(),
        disk["boots"]["systemd"]["p50"].as_f64(),
    ) else {
        bad.push("disk: no p50 of kennel and systemd".into());
        return;
    };
    match ratio_in(md, row) {
        None => bad.push(format!("performance.md: no row {row:?} with a (ratio X)")),
        Some(x) if (x - k / s).abs() > 0.006 => bad.push(format!(
            "{row}: ratio {x} is not kennel {k} / systemd {s} = {:.3}",
            k / s
        )),
        Some(_) => {}
    }
}

/// Networks (bench/net.py): a series for each row of the start on a network and of the CNI
/// calls, and the target's line (bridge against none) that of the reported medians.
fn networks(net: &Value, md: &str, bad: &mut Vec<String>) {
    for key in ["start", "start_isolated"] {
        match net[key].as_object().filter(|p| !p.is_empty()) {
            None => bad.push(format!("net: no {key}")),
            Some(peers) => {
                for (peer, v) in peers {
                    series(&format!("net {key}: {peer}"), v, bad);
                }
            }
        }
    }
    for op in ["kennel cni add", "kennel cni del"] {
        series(&format!("net: {op}"), &net["cni"][op], bad);
    }
    // The DNS lookups (microseconds each): kennel's always, aardvark-dns's when podman ran.
    let lookups = net["dns"]["us"].as_array().map_or(0, |a| a.len());
    let p50 = net["dns"]["p50"].as_f64().unwrap_or(f64::NAN);
    if lookups == 0 || p50.is_nan() || p50 <= 0.0 {
        bad.push(format!("net: no DNS lookups ({lookups} runs, p50 {p50})"));
    } else if !md.contains("| kennel's DNS, a unit name (A, UDP) |") {
        bad.push("performance.md: no row of kennel's DNS lookups".into());
    }
    let row = "| container start, network bridge";
    let p50 = |peer: &str| net["start"][peer]["p50"].as_f64();
    let (Some(b), Some(n)) = (p50("kennel, network bridge"), p50("kennel, network none")) else {
        bad.push("net: no p50 of kennel's bridge and none".into());
        return;
    };
    match ratio_in(md, row) {
        None => bad.push(format!("performance.md: no row {row:?} with a (ratio X)")),
        Some(x) if (x - b / n).abs() > 0.006 => bad.push(format!(
            "{row}: ratio {x} is not bridge {b} / none {n} = {:.3}",
            b / n
        )),
        Some(_) => {}
    }
}

/// One peer's measurement: `ms` (its runs) non-empty, every run positive and finite,
/// `n` their number, `p50` between `min` and `max`, which are the runs' own.
fn series(what: &str, v: &Value, bad: &mut Vec<String>) {
    let runs: Vec<f64> = v["ms"]
        .as_array()
        .map(|a| a.iter().map(|x| x.as_f64().unwrap_or(f64::NAN)).collect())
        .unwrap_or_default();
    if runs.is_empty() {
        bad.push(format!("{what}: no runs"));
        return;
    }
    if let Some(x) = runs.iter().find(|x| !(x.is_finite() && **x > 0.0)) {
        bad.push(format!("{what}: a run of {x} ms"));
    }
    if v["n"].as_u64() != Some(runs.len() as u64) {
        bad.push(format!("{what}: n {} for {} runs", v["n"], runs.len()));
    }
    let min = runs.iter().copied().fold(f64::INFINITY, f64::min);
    let max = runs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let (p50, lo, hi) = (v["p50"].as_f64(), v["min"].as_f64(), v["max"].as_f64());
    if lo != Some(min) || hi != Some(max) {
        bad.push(format!("{what}: min/max {lo:?}/{hi:?}, runs {min}/{max}"));
    }
    if !p50.is_some_and(|p| p.is_finite() && min <= p && p <= max) {
        bad.push(format!("{what}: p50 {p50:?} outside the runs {min}..{max}"));
    }
}

fn positive(what: &str, v: &Value, bad: &mut Vec<String>) {
    if !v.as_f64().is_some_and(|x| x.is_finite() && x > 0.0) {
        bad.push(format!("{what} is {v}"));
    }
}

/// The `(ratio X)` of the Targets table's row starting with `row`.
fn ratio_in(md: &str, row: &str) -> Option<f64> {
    let line = md.lines().find(|l| l.starts_with(row))?;
    let (_, rest) = line.split_once("(ratio ")?;
    let (x, _) = rest.split_once(')')?;
    Some(x.trim().parse().unwrap_or(f64::NAN))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn committed() -> (String, String) {
        let docs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs");
        let read = |f: &str| std::fs::read_to_string(docs.join(f)).expect("docs report");
        (read("performance.json"), read("performance.md"))
    }

    /// The report in docs/ (a full run) holds what a report must.
    #[test]
    fn the_committed_report_passes() {
        let (json, md) = committed();
        assert_eq!(problems(&json, &md), Vec::<String>::new());
    }

    /// And each kind of empty measurement is caught.
    #[test]
    fn a_report_without_numbers_fails() {
        let (json, md) = committed();
        let mut r: Value = serde_json::from_str(&json).expect("json");
        type Change = Box<dyn Fn(&mut Value)>;
        let cases: Vec<(&str, Change)> = vec![
            (
                "a zero run",
                Box::new(|r| r["start"]["crun run"]["ms"][0] = 0.0.into()),
            ),
            (
                "no runs",
                Box::new(|r| r["exec"]["runc exec"]["ms"] = Value::Array(vec![])),
            ),
            (
                "a wrong n",
                Box::new(|r| r["start"]["kennel"]["n"] = 1.into()),
            ),
            ("no exec", Box::new(|r| r["exec"] = serde_json::json!({}))),
            (
                "no rss",
                Box::new(|r| r["footprint"]["1"]["kennel"]["rss_kb"] = 0.into()),
            ),
            (
                "no reaping",
                Box::new(|r| r["reaping"]["tini"]["per_s"] = Value::Null),
            ),
            (
                "no pss",
                Box::new(|r| r["entrypoint"]["memory"]["s6"]["10"]["pss_kb"] = 0.into()),
            ),
            (
                "no podman runs",
                Box::new(|r| r["ocipodman"]["run"]["crun"]["ms"] = Value::Array(vec![])),
            ),
            (
                "no entry point runs",
                Box::new(|r| r["entrypoint"]["up"]["1"]["s6"]["ms"] = Value::Array(vec![])),
            ),
            (
                "other memory",
                Box::new(|r| r["entrypoint"]["memory"]["tini"]["1"]["rss_kb"] = 1.0.into()),
            ),
            (
                "other medians",
                Box::new(|r| r["start"]["kennel"]["p50"] = 20.0.into()),
            ),
            (
                "no net cni runs",
                Box::new(|r| r["net"]["cni"]["kennel cni add"]["ms"] = Value::Array(vec![])),
            ),
            (
                "another bridge median",
                Box::new(|r| {
                    let max = r["net"]["start"]["kennel, network bridge"]["max"].clone();
                    r["net"]["start"]["kennel, network bridge"]["p50"] = max;
                }),
            ),
            (
                "no disk boots",
                Box::new(|r| r["disk"]["boots"]["systemd"]["ms"] = Value::Array(vec![])),
            ),
            (
                "another disk boot median",
                Box::new(|r| {
                    let max = r["disk"]["boots"]["kennel"]["max"].clone();
                    r["disk"]["boots"]["kennel"]["p50"] = max;
                    let min = r["disk"]["boots"]["systemd"]["min"].clone();
                    r["disk"]["boots"]["systemd"]["p50"] = min;
                }),
            ),
        ];
        for (what, change) in cases {
            let mut bad = r.clone();
            change(&mut bad);
            let found = problems(&bad.to_string(), &md);
            assert!(!found.is_empty(), "{what}: not caught");
        }
        let no_ratio = md.replace("(ratio ", "(");
        assert!(!problems(&json, &no_ratio).is_empty(), "no ratio line");
        let mut nan = r.clone();
        nan["start"]["kennel"]["p50"] = 123456.5.into();
        let nan = nan.to_string().replace("123456.5", "NaN");
        assert!(problems(&nan, &md)[0].contains("NaN"), "NaN");
        r["skipped"] = serde_json::json!({});
        assert!(problems(&r.to_string(), &md).is_empty());
    }
}
