//! The chain's mechanics with shell-script plugins that record what they were given (no
//! network: the real plugins are in integration/cni.rs).

use super::*;
use serde_json::json;
use std::path::Path;
use std::time::Duration;

const PLUGIN: &str = r#"#!/bin/sh
set -e
d=$(dirname "$0")/../log
n=$(basename "$0")
cat > "$d/$n.$CNI_COMMAND.stdin"
env | grep '^CNI_' | sort > "$d/$n.$CNI_COMMAND.env"
echo "$n $CNI_COMMAND" >> "$d/order"
[ "$CNI_COMMAND" = ADD ] || exit 0
case $n in
  slow) exec sleep 10 ;;
  held) sleep 10 & exit 0 ;;
  failing) echo '{"cniVersion":"1.0.0","code":7,"msg":"bad config","details":"field x"}'; exit 1 ;;
  first) echo '{"cniVersion":"0.4.0","interfaces":[{"name":"eth0","sandbox":"/ns"}],"ips":[{"version":"4","address":"10.5.0.2/16","interface":0}]}' ;;
  *) echo '{"cniVersion":"0.4.0","interfaces":[{"name":"eth0","sandbox":"/ns"}],"ips":[{"version":"4","address":"10.5.0.3/16","interface":0}]}' ;;
esac
"#;

struct Fixture {
    dir: tempfile::TempDir,
    paths: CniPaths,
}

fn fixture(plugins: &[&str]) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    for sub in ["conf", "bin", "log", "cache"] {
        std::fs::create_dir(dir.path().join(sub)).unwrap();
    }
    for p in ["first", "second", "slow", "failing", "held"] {
        let f = dir.path().join("bin").join(p);
        std::fs::write(&f, PLUGIN).unwrap();
        std::fs::set_permissions(&f, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    }
    let list: Vec<Value> = plugins
        .iter()
        .map(|t| json!({"type": t, "capabilities": {"portMappings": true}}))
        .collect();
    let conf = json!({"cniVersion": "0.4.0", "name": "n", "plugins": list});
    std::fs::write(dir.path().join("conf/n.conflist"), conf.to_string()).unwrap();
    let mut paths = CniPaths::new(
        dir.path().join("conf"),
        vec![dir.path().join("nothing"), dir.path().join("bin")],
        dir.path().join("cache"),
    );
    paths.timeout = Duration::from_millis(300);
    Fixture { dir, paths }
}

impl Fixture {
    fn log(&self, f: &str) -> String {
        std::fs::read_to_string(self.dir.path().join("log").join(f)).unwrap_or_default()
    }
    fn stdin(&self, f: &str) -> Value {
        serde_json::from_str(&self.log(f)).unwrap()
    }
}

fn att<'a>(args: &'a [(String, String)]) -> Attachment<'a> {
    Attachment {
        container_id: "c1",
        netns: Path::new("/ns"),
        ifname: "eth0",
        args,
        capability_args: json!({"portMappings": [{"hostPort": 1}]}),
    }
}

#[test]
fn add_check_del_run_the_chain_in_order_with_results_env_and_cache() {
    let f = fixture(&["first", "second"]);
    let args = [
        ("IP".to_string(), "10.5.0.9".to_string()),
        ("K".into(), "V".into()),
    ];
    let list = load(&f.paths, "n").unwrap();
    let r = add(&f.paths, &list, &att(&args)).unwrap();
    assert_eq!(r.addresses("eth0"), vec![("10.5.0.3".parse().unwrap(), 16)]);
    assert_eq!(r.cni_version, "1.0.0");
    let second = f.stdin("second.ADD.stdin");
    assert_eq!(second["prevResult"]["ips"][0]["address"], "10.5.0.2/16");
    assert_eq!(second["prevResult"]["cniVersion"], "0.4.0");
    assert_eq!(
        second["runtimeConfig"],
        json!({"portMappings": [{"hostPort": 1}]})
    );
    assert!(f.stdin("first.ADD.stdin").get("prevResult").is_none());
    let env = f.log("first.ADD.env");
    let bin = f.dir.path().join("bin");
    for want in [
        "CNI_ARGS=IP=10.5.0.9;K=V",
        "CNI_COMMAND=ADD",
        "CNI_CONTAINERID=c1",
        "CNI_IFNAME=eth0",
        "CNI_NETNS=/ns",
    ] {
        assert!(env.contains(want), "{want} in {env}");
    }
    assert!(env.contains(&format!(":{}", bin.display())), "{env}");
    check(&f.paths, &list, &att(&args)).unwrap();
    assert_eq!(
        f.stdin("first.CHECK.stdin")["prevResult"]["ips"][0]["address"],
        "10.5.0.3/16"
    );
    // DEL after the configuration is gone: from the cache, in reverse, with the result.
    std::fs::remove_file(f.dir.path().join("conf/n.conflist")).unwrap();
    let no_args = Attachment {
        netns: Path::new(""),
        args: &[],
        capability_args: Value::Null,
        ..att(&args)
    };
    del(&f.paths, "n", &no_args).unwrap();
    assert_eq!(
        f.log("order"),
        "first ADD\nsecond ADD\nfirst CHECK\nsecond CHECK\nsecond DEL\nfirst DEL\n"
    );
    assert_eq!(
        f.stdin("first.DEL.stdin")["prevResult"]["ips"][0]["address"],
        "10.5.0.3/16"
    );
    assert!(
        f.log("first.DEL.env").contains("CNI_ARGS=IP=10.5.0.9;K=V"),
        "the cached args"
    );
    assert!(
        f.log("first.DEL.env").contains("CNI_NETNS=/ns\n"),
        "the cached netns"
    );
    assert!(cached(&f.paths).is_empty());
    assert!(!f.dir.path().join("cache/n").exists());
    // Again: nothing cached, no configuration: nothing to do.
    del(&f.paths, "n", &no_args).unwrap();
    assert_eq!(f.log("order").lines().count(), 6);
}

#[test]
fn a_failed_add_reports_the_plugin_error_and_is_undone() {
    let f = fixture(&["first", "failing", "missing"]);
    let list = load(&f.paths, "n").unwrap();
    let e = add(&f.paths, &list, &att(&[])).unwrap_err().to_string();
    assert!(e.contains("network n ("), "{e}");
    assert!(e.contains("n.conflist): plugin failing: ADD: error 7 (invalid network config): bad config: field x"), "{e}");
    assert_eq!(
        f.log("order"),
        "first ADD\nfailing ADD\nfailing DEL\nfirst DEL\n"
    );
    assert!(cached(&f.paths).is_empty());
}

#[test]
fn a_plugin_past_its_timeout_is_killed() {
    let f = fixture(&["slow"]);
    let list = load(&f.paths, "n").unwrap();
    let started = std::time::Instant::now();
    let e = add(&f.paths, &list, &att(&[])).unwrap_err().to_string();
    assert!(
        e.contains("plugin slow: ADD: still running after 300ms: killed"),
        "{e}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn a_plugin_whose_child_holds_its_stdout_is_killed_at_the_timeout() {
    let f = fixture(&["held"]);
    let list = load(&f.paths, "n").unwrap();
    let e = add(&f.paths, &list, &att(&[])).unwrap_err().to_string();
    assert!(
        e.contains("plugin held: ADD: exited, but what it started still held its stdout"),
        "{e}"
    );
}

#[test]
fn a_missing_plugin_is_named_with_the_directories() {
    let f = fixture(&["missing"]);
    let list = load(&f.paths, "n").unwrap();
    let e = add(&f.paths, &list, &att(&[])).unwrap_err().to_string();
    assert!(e.contains("plugin \"missing\" not found in"), "{e}");
    assert!(e.contains("/nothing, "), "{e}");
}
