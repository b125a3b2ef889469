//! The `kennel.*` options of the kernel command line (the kernel gives init no dotted
//! options as arguments or environment, so they are read from `/proc/cmdline`).

use std::path::PathBuf;

/// What the kernel command line says to kennel.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Cmdline {
    /// `kennel.hostname=NAME`: overrides `/etc/hostname`.
    pub hostname: Option<String>,
    /// `kennel.units=DIR`: instead of `/etc/kennel/units`.
    pub units: Option<PathBuf>,
    /// `kennel.log=LEVEL`.
    pub log: Option<String>,
    /// `kennel.test_panic=1`: panic once the units are up (only honoured by builds with the
    /// `test-panic` feature).
    pub test_panic: bool,
    /// The kernel's `rw` (true) or `ro` (false, the default), the last one given.
    pub rw: bool,
    /// `fsck.mode=`, `fsck.repair=`, `fastboot`, `forcefsck`.
    pub fsck: super::fsck::Policy,
    /// `modules-load=A,B` and `rd.modules-load=A,B` (systemd's): more modules to load at
    /// boot, after boot.toml's, in the order given (each option may be repeated).
    pub modules_load: Vec<String>,
    /// Words of those families with a value kennel does not know (said on the console).
    pub unknown: Vec<String>,
}

impl Cmdline {
    pub fn read() -> Cmdline {
        Cmdline::parse(&std::fs::read_to_string("/proc/cmdline").unwrap_or_default())
    }

    pub fn parse(text: &str) -> Cmdline {
        let mut c = Cmdline::default();
        (c.fsck, c.unknown) = super::fsck::Policy::parse(text);
        for word in text.split_whitespace() {
            match word {
                "rw" => c.rw = true,
                "ro" => c.rw = false,
                _ => {}
            }
            let Some((key, value)) = word.split_once('=') else {
                continue;
            };
            match key {
                "kennel.hostname" => c.hostname = Some(value.to_string()),
                "kennel.units" => c.units = Some(PathBuf::from(value)),
                "kennel.log" => c.log = Some(value.to_string()),
                "kennel.test_panic" => c.test_panic = value == "1",
                "modules-load" | "rd.modules-load" => {
                    for m in value.split(',').filter(|m| !m.is_empty()) {
                        if !c.modules_load.iter().any(|known| known == m) {
                            c.modules_load.push(m.to_string());
                        }
                    }
                }
                _ => {}
            }
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_kennel_options_only() {
        let c = Cmdline::parse(
            "console=ttyS0 quiet kennel.hostname=vm1 kennel.units=/etc/u kennel.log=debug kennel.test_panic=1 hostname=x\n",
        );
        assert_eq!(c.hostname.as_deref(), Some("vm1"));
        assert_eq!(c.units, Some(PathBuf::from("/etc/u")));
        assert_eq!(c.log.as_deref(), Some("debug"));
        assert!(c.test_panic);
        assert_eq!(Cmdline::parse("ro quiet"), Cmdline::default());
        assert!(Cmdline::parse("ro rw").rw);
        assert!(!Cmdline::parse("rw ro").rw);
    }

    #[test]
    fn modules_load_lists_are_joined_in_order_once_each() {
        let c = Cmdline::parse("modules-load=veth,bridge rd.modules-load=nf_tables,,veth quiet");
        assert_eq!(c.modules_load, ["veth", "bridge", "nf_tables"]);
        assert!(Cmdline::parse("modules-load=").modules_load.is_empty());
    }
}
