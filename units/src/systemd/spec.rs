//! Specifiers (systemd.unit(5), "SPECIFIERS"): `%n`, `%i`, ... in unit file values,
//! expanded when the file is read. Those whose value kennel cannot know when it reads the
//! file are refused by name.

/// What the specifiers of one unit expand to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    /// The full unit name, `getty@tty1.service` (`%n`).
    pub full: String,
    /// The host name (`%H`, `%l`), if known (read from /proc/sys/kernel/hostname by the
    /// loader).
    pub hostname: Option<String>,
}

impl Names {
    /// The name without its type suffix, `getty@tty1` (`%N`).
    pub fn stem(&self) -> &str {
        self.full.rsplit_once('.').map_or(&self.full, |(s, _)| s)
    }

    /// The prefix: the part before `@` (`%p`), the whole stem without one.
    pub fn prefix(&self) -> &str {
        let stem = self.stem();
        stem.split_once('@').map_or(stem, |(p, _)| p)
    }

    /// The instance: the part after `@` (`%i`), empty without one.
    pub fn instance(&self) -> &str {
        self.stem().split_once('@').map_or("", |(_, i)| i)
    }
}

/// systemd-escape's unescaping of a path-like name: `-` is `/`, `\xNN` is that byte.
pub fn unescape(s: &str) -> String {
    let mut bytes = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'-' => bytes.push(b'/'),
            b'\\' if b.get(i + 1) == Some(&b'x') && i + 4 <= b.len() => {
                let hex = std::str::from_utf8(&b[i + 2..i + 4]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(v) => {
                        bytes.push(v);
                        i += 3;
                    }
                    Err(_) => bytes.push(b'\\'),
                }
            }
            c => bytes.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Expands the specifiers of `s`. Known at load time: `%n %N %p %P %i %I %f %H %l %t %S
/// %C %L %E %T %V %%`. Refused (an error naming it): `%h %u %U %g %G` (the user of the
/// service manager: kennel's own, known only when it runs) and every other letter.
pub fn expand(s: &str, names: &Names) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let Some(spec) = chars.next() else {
            return Err("a lone % at the end: write %% for a percent sign".into());
        };
        match spec {
            '%' => out.push('%'),
            'n' => out.push_str(&names.full),
            'N' => out.push_str(names.stem()),
            'p' => out.push_str(names.prefix()),
            'P' => out.push_str(&unescape(names.prefix())),
            'i' => out.push_str(names.instance()),
            'I' => out.push_str(&unescape(names.instance())),
            'f' => {
                let base = if names.instance().is_empty() {
                    names.prefix()
                } else {
                    names.instance()
                };
                let path = unescape(base);
                if !path.starts_with('/') {
                    out.push('/');
                }
                out.push_str(&path);
            }
            'H' | 'l' => match &names.hostname {
                Some(h) if spec == 'l' => out.push_str(h.split('.').next().unwrap_or(h)),
                Some(h) => out.push_str(h),
                None => return Err(format!("%{spec} (the host name) is not known")),
            },
            't' => out.push_str("/run"),
            'S' => out.push_str("/var/lib"),
            'C' => out.push_str("/var/cache"),
            'L' => out.push_str("/var/log"),
            'E' => out.push_str("/etc"),
            'T' => out.push_str("/tmp"),
            'V' => out.push_str("/var/tmp"),
            'h' | 'u' | 'U' | 'g' | 'G' => {
                return Err(format!(
                    "specifier %{spec} (the user of the service manager) is not supported: kennel's user is known only when it runs; write the value out"
                ))
            }
            other => {
                return Err(format!(
                    "specifier %{other} is not supported (kennel expands %n %N %p %P %i %I %f %H %l %t %S %C %L %E %T %V %%)"
                ))
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(full: &str) -> Names {
        Names {
            full: full.into(),
            hostname: Some("box.example".into()),
        }
    }

    #[test]
    fn template_instance_specifiers() {
        // systemd.unit(5): for getty@tty1.service, %p is getty, %i tty1.
        let n = names("getty@tty1.service");
        assert_eq!(
            expand("%n %N %p %i %%i", &n).unwrap(),
            "getty@tty1.service getty@tty1 getty tty1 %i"
        );
        let n = names("systemd-fsck@dev-disk-by\\x2dlabel-root.service");
        assert_eq!(expand("%I", &n).unwrap(), "dev/disk/by-label/root");
        assert_eq!(expand("%i", &n).unwrap(), "dev-disk-by\\x2dlabel-root");
        assert_eq!(expand("%f", &n).unwrap(), "/dev/disk/by-label/root");
    }

    #[test]
    fn directories_and_host() {
        let n = names("redis.service");
        assert_eq!(
            expand("%t/%p %S %C %L %H %l", &n).unwrap(),
            "/run/redis /var/lib /var/cache /var/log box.example box"
        );
        assert_eq!(expand("%i", &n).unwrap(), "");
    }

    #[test]
    fn unknowable_specifiers_are_refused_by_name() {
        let n = names("a.service");
        assert!(expand("%h/x", &n).unwrap_err().contains("%h"));
        assert!(expand("%U", &n).unwrap_err().contains("%U"));
        assert!(expand("%Z", &n)
            .unwrap_err()
            .contains("%Z is not supported"));
        assert!(expand("50%", &n).is_err());
        let mut no_host = names("a.service");
        no_host.hostname = None;
        assert!(expand("%H", &no_host).is_err());
    }
}
