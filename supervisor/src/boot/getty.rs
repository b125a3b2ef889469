//! A login on the console: for each console the kernel writes to (`ttyS0`, or `tty1` for
//! the screen's `tty0`), a `getty@TTY` unit running the distribution's getty (agetty from
//! util-linux, else busybox's), restarted after each session. The unit is an ordinary unit
//! file that kennel writes at boot into `/run/kennel/generated`, unless the unit directory
//! has its own `getty@TTY.toml` (which is used instead) or boot.toml says `getty = false`.

use std::path::{Path, PathBuf};

/// Where units made at boot go (loaded along with the unit directory).
pub const GENERATED: &str = "/run/kennel/generated";

/// The ttys to offer a login on, from `/sys/class/tty/console/active` (`tty0 ttyS0`):
/// the screen's current VT (`tty0`) is the first VT, `tty1`.
pub fn consoles(active: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for name in active.split_whitespace() {
        let tty = if name == "tty0" { "tty1" } else { name };
        if !out.iter().any(|t| t == tty) {
            out.push(tty.to_string());
        }
    }
    out
}

/// The getty command for `tty`: agetty's or busybox's, whichever `exists` finds first.
pub fn command(tty: &str, exists: impl Fn(&str) -> bool) -> Option<Vec<String>> {
    let serial = !tty.starts_with("tty") || tty.starts_with("ttyS") || tty.starts_with("ttyAMA");
    let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    for agetty in ["/sbin/agetty", "/usr/sbin/agetty"] {
        if exists(agetty) {
            return Some(if serial {
                v(&[
                    agetty,
                    "--keep-baud",
                    "115200,57600,38400,9600",
                    tty,
                    "vt220",
                ])
            } else {
                v(&[agetty, "--noclear", tty, "linux"])
            });
        }
    }
    for getty in ["/sbin/getty", "/bin/getty"] {
        if exists(getty) && !exists("/sbin/agetty") {
            return Some(v(&[getty, "115200", tty, "vt100"]));
        }
    }
    if exists("/bin/busybox") {
        return Some(v(&["/bin/busybox", "getty", "115200", tty, "vt100"]));
    }
    None
}

/// The unit file for a getty on `tty`.
pub fn unit(tty: &str, command: &[String]) -> String {
    let argv: Vec<String> = command.iter().map(|a| format!("{a:?}")).collect();
    format!(
        "# Made by kennel at boot: a login on the console {tty}. To change it, copy this file to\n\
         # the unit directory (/etc/kennel/units/getty@{tty}.toml), which is then used instead;\n\
         # for no getty at all, set `getty = false` in /etc/kennel/boot.toml.\n\
         description = \"login on {tty}\"\n\n\
         [service]\n\
         command = [{}]\n\
         stop_signal = \"SIGHUP\"\n\
         stop_timeout = \"2s\"\n\n\
         [restart]\n\
         policy = \"always\"\n\
         delay = \"100ms\"\n\
         burst = 10\n",
        argv.join(", ")
    )
}

/// Write the getty units this machine needs into [`GENERATED`]; returns the directory to
/// load them from (if any was written) and the lines to say.
pub fn generate(units: &Path) -> (Option<PathBuf>, Vec<String>) {
    let active = std::fs::read_to_string("/sys/class/tty/console/active").unwrap_or_default();
    let mut lines = Vec::new();
    let mut wrote = false;
    for tty in consoles(&active) {
        let name = format!("getty@{tty}");
        if units.join(format!("{name}.toml")).exists() {
            lines.push(format!("{name}: the unit directory's own"));
            continue;
        }
        let Some(cmd) = command(&tty, |p| Path::new(p).exists()) else {
            lines.push(format!(
                "no login on {tty}: no getty installed (agetty from util-linux, or busybox)"
            ));
            continue;
        };
        let dir = Path::new(GENERATED);
        let write = std::fs::create_dir_all(dir)
            .and_then(|()| std::fs::write(dir.join(format!("{name}.toml")), unit(&tty, &cmd)));
        match write {
            Ok(()) => {
                wrote = true;
                lines.push(format!("{name}: {}", cmd.join(" ")));
            }
            Err(e) => lines.push(format!("{name}: write {GENERATED}: {e}")),
        }
    }
    (wrote.then(|| PathBuf::from(GENERATED)), lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consoles_and_commands() {
        assert_eq!(consoles("tty0 ttyS0\n"), ["tty1", "ttyS0"]);
        assert_eq!(consoles(""), Vec::<String>::new());
        let agetty = |p: &str| p == "/sbin/agetty";
        assert_eq!(
            command("ttyS0", agetty).expect("agetty"),
            [
                "/sbin/agetty",
                "--keep-baud",
                "115200,57600,38400,9600",
                "ttyS0",
                "vt220"
            ]
        );
        assert_eq!(
            command("tty1", agetty).expect("agetty"),
            ["/sbin/agetty", "--noclear", "tty1", "linux"]
        );
        let busybox = |p: &str| p == "/bin/busybox";
        assert_eq!(
            command("ttyS0", busybox).expect("busybox"),
            ["/bin/busybox", "getty", "115200", "ttyS0", "vt100"]
        );
        assert_eq!(command("ttyS0", |_| false), None);
    }

    #[test]
    fn the_generated_unit_is_a_valid_unit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cmd = command("ttyS0", |p| p == "/sbin/agetty").expect("cmd");
        std::fs::write(dir.path().join("getty@ttyS0.toml"), unit("ttyS0", &cmd)).expect("write");
        let set = kennel_units::load_dir(dir.path()).expect("a valid unit");
        let u = set.get("getty@ttyS0").expect("loaded");
        assert_eq!(u.service.command, cmd);
    }
}
