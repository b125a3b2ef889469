//! `Exec*=` command lines (systemd.service(5), "COMMAND LINES"): the prefixes, the split
//! into words, specifiers, and `$VAR` / `${VAR}` expansion, resolved into kennel's argv.

use std::collections::BTreeMap;

use super::spec::{self, Names};
use super::syntax::split_words;

/// One piece of a word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Text(String),
    /// `${NAME}`: replaced by the variable's value, whitespace and all, inside the word.
    Var(String),
}

/// One word of the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Word {
    /// A word of its own, possibly with `${NAME}` pieces: always exactly one argument.
    Pieces(Vec<Piece>),
    /// `$NAME` as a word of its own: the value split at whitespace, zero or more arguments.
    Split(String),
}

/// A parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exec {
    /// `-`: a failure exit is recorded but counts as success.
    pub ignore_failure: bool,
    /// `@`: the second word is argv[0], the first the file run.
    pub argv0: bool,
    /// `:`: no variable expansion (`$` is literal).
    pub no_expand: bool,
    /// `+`, `!` or `!!`: privileges and sandboxing (see the mapping).
    pub privileges: Option<&'static str>,
    /// The words, the file run first.
    pub words: Vec<Word>,
}

/// Parses a command line: the prefixes (any of `-`, `@`, `:`, and one of `+`, `!`, `!!`),
/// then words as [`split_words`] splits them, each with its specifiers expanded, then
/// `$NAME` words and `${NAME}` pieces (`$$` is a `$`).
pub fn parse(value: &str, names: &Names) -> Result<Exec, String> {
    let mut exec = Exec {
        ignore_failure: false,
        argv0: false,
        no_expand: false,
        privileges: None,
        words: Vec::new(),
    };
    let mut rest = value.trim_start();
    loop {
        let set_priv = |exec: &mut Exec, p: &'static str| {
            if exec.privileges.is_some() {
                return Err(format!(
                    "{value:?}: only one of the prefixes +, !, !! may be given"
                ));
            }
            exec.privileges = Some(p);
            Ok(())
        };
        if let Some(r) = rest.strip_prefix("!!") {
            set_priv(&mut exec, "!!")?;
            rest = r;
        } else if let Some(r) = rest.strip_prefix('!') {
            set_priv(&mut exec, "!")?;
            rest = r;
        } else if let Some(r) = rest.strip_prefix('+') {
            set_priv(&mut exec, "+")?;
            rest = r;
        } else if let Some(r) = rest.strip_prefix('-') {
            exec.ignore_failure = true;
            rest = r;
        } else if let Some(r) = rest.strip_prefix('@') {
            exec.argv0 = true;
            rest = r;
        } else if let Some(r) = rest.strip_prefix(':') {
            exec.no_expand = true;
            rest = r;
        } else {
            break;
        }
    }
    let words = split_words(rest)?;
    if words.iter().any(|w| w == ";") {
        return Err(
            "several commands on one line (a lone \";\") are not supported: write one command per line"
                .into(),
        );
    }
    for word in words {
        let word = spec::expand(&word, names)?;
        exec.words.push(if exec.no_expand {
            Word::Pieces(vec![Piece::Text(word)])
        } else {
            expand_word(&word)
        });
    }
    if exec.words.is_empty() {
        return Err("no command".into());
    }
    if exec.argv0 && exec.words.len() < 2 {
        return Err("the @ prefix needs the file to run and then argv[0]".into());
    }
    Ok(exec)
}

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with(|c: char| c.is_ascii_digit())
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// `$NAME` alone, or a word with `${NAME}` pieces; `$$` is `$`; any other `$` is literal.
fn expand_word(word: &str) -> Word {
    if let Some(name) = word.strip_prefix('$').filter(|n| is_name(n)) {
        return Word::Split(name.to_string());
    }
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut rest = word;
    while let Some(i) = rest.find('$') {
        text.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(r) = after.strip_prefix('$') {
            text.push('$');
            rest = r;
        } else if let Some((name, r)) = after
            .strip_prefix('{')
            .and_then(|a| a.split_once('}'))
            .filter(|(n, _)| is_name(n))
        {
            if !text.is_empty() {
                pieces.push(Piece::Text(std::mem::take(&mut text)));
            }
            pieces.push(Piece::Var(name.to_string()));
            rest = r;
        } else {
            text.push('$');
            rest = after;
        }
    }
    text.push_str(rest);
    if !text.is_empty() || pieces.is_empty() {
        pieces.push(Piece::Text(text));
    }
    Word::Pieces(pieces)
}

/// How a command line's variables were resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub argv: Vec<String>,
    /// Variables left to `/bin/sh` at start (their value was not known when the file was
    /// read); empty when the argv is the command itself.
    pub deferred: Vec<String>,
}

/// Turns the words into kennel's argv. A variable whose value is known when the file is read
/// (set by `Environment=`, and no `EnvironmentFile=` that could override it) is expanded
/// here, as systemd would. If one is not known, the command is run through
/// `/bin/sh -c 'set -f; exec ...'` with every literal single-quoted, `${NAME}` as
/// `"${NAME}"` (one argument) and `$NAME` as `${NAME}` (split at whitespace, no globbing):
/// the shell resolves them from the service's environment at each start. With `@`, the
/// argv[0] word is dropped (kennel runs the file with argv[0] = the file).
pub fn resolve(exec: &Exec, env: &BTreeMap<String, String>, env_file: bool) -> Resolved {
    let words: Vec<&Word> = exec
        .words
        .iter()
        .enumerate()
        .filter(|(i, _)| !(exec.argv0 && *i == 1))
        .map(|(_, w)| w)
        .collect();
    let known = |name: &str| if env_file { None } else { env.get(name) };
    let mut deferred = Vec::new();
    for w in &words {
        match w {
            Word::Split(n) if known(n).is_none() => deferred.push(n.clone()),
            Word::Pieces(ps) => {
                for p in ps {
                    if let Piece::Var(n) = p {
                        if known(n).is_none() {
                            deferred.push(n.clone());
                        }
                    }
                }
            }
            _ => {}
        }
    }
    deferred.dedup();
    if deferred.is_empty() {
        let mut argv = Vec::new();
        for w in words {
            match w {
                Word::Split(n) => {
                    let v = known(n).map_or("", String::as_str);
                    argv.extend(v.split_whitespace().map(str::to_string));
                }
                Word::Pieces(ps) => argv.push(
                    ps.iter()
                        .map(|p| match p {
                            Piece::Text(t) => t.as_str(),
                            Piece::Var(n) => known(n).map_or("", String::as_str),
                        })
                        .collect(),
                ),
            }
        }
        return Resolved { argv, deferred };
    }
    let mut script = String::from("set -f; exec");
    for w in words {
        script.push(' ');
        match w {
            Word::Split(n) => script.push_str(&format!("${{{n}}}")),
            Word::Pieces(ps) => {
                for p in ps {
                    match p {
                        Piece::Text(t) => script.push_str(&shell_quote(t)),
                        Piece::Var(n) => script.push_str(&format!("\"${{{n}}}\"")),
                    }
                }
            }
        }
    }
    Resolved {
        argv: vec!["/bin/sh".into(), "-c".into(), script],
        deferred,
    }
}

/// `s` single-quoted for sh.
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Names {
        Names {
            full: "web@8080.service".into(),
            hostname: None,
        }
    }

    fn argv(line: &str, env: &[(&str, &str)], env_file: bool) -> Resolved {
        let env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        resolve(&parse(line, &names()).unwrap(), &env, env_file)
    }

    #[test]
    fn prefixes() {
        let e = parse("-@/bin/sh sh -c true", &names()).unwrap();
        assert!(e.ignore_failure && e.argv0 && !e.no_expand && e.privileges.is_none());
        assert_eq!(parse("+/bin/x", &names()).unwrap().privileges, Some("+"));
        assert_eq!(parse("!!-/bin/x", &names()).unwrap().privileges, Some("!!"));
        assert_eq!(
            parse(":/bin/x $A", &names()).unwrap().words[1],
            Word::Pieces(vec![Piece::Text("$A".into())])
        );
        assert!(parse("+!/bin/x", &names()).is_err());
        assert!(parse("@/bin/x", &names()).is_err());
        assert!(parse("-", &names()).is_err());
    }

    #[test]
    fn quoting_and_specifiers() {
        // systemd.service(5): ExecStart=/bin/echo "one two" 'three' four\ five
        assert_eq!(
            argv(
                r#"/bin/echo "one two" 'three' four\ five --port=%i"#,
                &[],
                false
            )
            .argv,
            ["/bin/echo", "one two", "three", "four five", "--port=8080"]
        );
        assert!(parse("/bin/echo a ; /bin/echo b", &names()).is_err());
    }

    #[test]
    fn known_variables_expand_as_systemd_does() {
        // systemd.service(5): Environment="ONE=one" 'TWO=two two'
        // ExecStart=echo $ONE $TWO ${TWO} -> echo one two two "two two"
        let r = argv(
            "/bin/echo $ONE $TWO ${TWO} x${ONE}y $$HOME",
            &[("ONE", "one"), ("TWO", "two two")],
            false,
        );
        assert_eq!(
            r.argv,
            [
                "/bin/echo",
                "one",
                "two",
                "two",
                "two two",
                "xoney",
                "$HOME"
            ]
        );
        assert!(r.deferred.is_empty());
        // An @ drops argv[0]:
        assert_eq!(
            argv("@/bin/sleep mysleep 1", &[], false).argv,
            ["/bin/sleep", "1"]
        );
    }

    #[test]
    fn unknown_variables_go_to_the_shell() {
        let r = argv(
            "/usr/sbin/sshd -D $SSHD_OPTS --x=${A}b 'it''s'",
            &[("A", "a")],
            true,
        );
        assert_eq!(r.deferred, ["SSHD_OPTS", "A"]);
        assert_eq!(
            r.argv,
            [
                "/bin/sh",
                "-c",
                "set -f; exec '/usr/sbin/sshd' '-D' ${SSHD_OPTS} '--x='\"${A}\"'b' 'its'"
            ]
        );
    }

    #[test]
    fn deferred_commands_run_in_sh_as_systemd_would_expand_them() {
        let r = argv("/bin/echo $W ${W} 'a'\\''b' *", &[], true);
        let out = std::process::Command::new(&r.argv[0])
            .args(&r.argv[1..])
            .env("W", "x  y")
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "x y x  y a'b *\n");
    }
}
