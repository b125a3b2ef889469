//! The order in which fstab's entries are mounted: fstab's own, except that an entry waits
//! for the entries it lies under (its mount point's parents, a bind mount's or a swap file's
//! source, its `x-systemd.requires-mounts-for=` paths), as systemd orders them. Pure.

use super::fstab::{Entry, FstabError, Source};

/// `path` is `base` or lies under it.
fn under(path: &str, base: &str) -> bool {
    let base = base.trim_end_matches('/');
    path == base || path.strip_prefix(base).is_some_and(|r| r.starts_with('/'))
}

/// Whether `a` must be mounted before `b`.
fn before(a: &Entry, b: &Entry) -> bool {
    if a.is_swap() || a.noauto || a.target == "/" {
        return false;
    }
    let t = a.target.as_str();
    let parent = b.target != t && under(&b.target, t);
    let source = match &b.source {
        Source::Path(p) if p.starts_with('/') && (b.bind.is_some() || b.is_swap()) => under(p, t),
        _ => false,
    };
    let required = b.requires.iter().any(|r| r.starts_with('/') && under(r, t));
    parent || source || required
}

/// Indexes into `entries` (the root's line and `noauto` lines left out), in mount order; a
/// cycle is an error naming its lines.
pub fn order(entries: &[Entry]) -> Result<Vec<usize>, FstabError> {
    let wanted: Vec<usize> = (0..entries.len())
        .filter(|&i| entries[i].target != "/" && !entries[i].noauto)
        .collect();
    let mut done: Vec<usize> = Vec::new();
    while done.len() < wanted.len() {
        let next = wanted.iter().copied().find(|&i| {
            !done.contains(&i)
                && wanted
                    .iter()
                    .all(|&j| j == i || done.contains(&j) || !before(&entries[j], &entries[i]))
        });
        match next {
            Some(i) => done.push(i),
            None => {
                let left: Vec<String> = wanted
                    .iter()
                    .filter(|i| !done.contains(i))
                    .map(|&i| entries[i].line.to_string())
                    .collect();
                let first = wanted
                    .iter()
                    .find(|i| !done.contains(i))
                    .map_or(0, |&i| entries[i].line);
                return Err(FstabError {
                    line: first,
                    what: format!(
                        "lines {} need each other's mounts first (a cycle)",
                        left.join(", ")
                    ),
                });
            }
        }
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::super::fstab::parse;
    use super::*;

    fn lines(text: &str) -> Vec<usize> {
        let e = parse(text).expect("valid");
        order(&e)
            .expect("no cycle")
            .into_iter()
            .map(|i| e[i].line)
            .collect()
    }

    #[test]
    fn fstab_order_unless_an_entry_lies_under_a_later_one() {
        // The bind's source and the swap file are on /data, listed after them; /data/sub
        // is under /data; the root and noauto lines are not mounted here.
        let t = "UUID=r / ext4 defaults 0 1\n\
                 /data/shared /srv/shared none bind 0 0\n\
                 /data/swap none swap sw 0 0\n\
                 /dev/vdc /data/sub ext4 defaults 0 2\n\
                 tmpfs /tmp tmpfs defaults 0 0\n\
                 UUID=d /data ext4 defaults 0 2\n\
                 /dev/x /mnt auto noauto 0 0\n";
        assert_eq!(lines(t), [5, 6, 2, 3, 4]);
        // Already in order: fstab's order is kept.
        let t = "tmpfs /tmp tmpfs defaults\n/dev/b /b ext4 defaults\n/dev/c /b/c ext4 defaults\n";
        assert_eq!(lines(t), [1, 2, 3]);
        // A path that merely shares a prefix is not under it.
        let t = "/dev/a /datab ext4 defaults\n/dev/b /data ext4 defaults\n";
        assert_eq!(lines(t), [1, 2]);
        let t = "/dev/a /a ext4 x-systemd.requires-mounts-for=/b/x\n/dev/b /b ext4 defaults\n";
        assert_eq!(lines(t), [2, 1]);
    }

    #[test]
    fn a_cycle_names_its_lines() {
        let t = "/b/src /a none bind\n/a/src /b none bind\n";
        let e = parse(t).expect("valid");
        let err = order(&e).expect_err("cycle");
        assert_eq!(
            err.to_string(),
            "/etc/fstab:1: lines 1, 2 need each other's mounts first (a cycle)"
        );
    }
}
