//! "Did you mean ...?": the closest candidate to a misspelt word.

/// The candidate closest to `word`: the one with the smallest edit distance if it is at
/// most 2 (and less than the word's length, so that `"x"` does not suggest `"no"`), or
/// else one that `word` is a prefix of, or that is a prefix of `word` (at least 3
/// characters). Ties go to the earlier candidate.
pub fn suggest<'a, I>(word: &str, candidates: I) -> Option<&'a str>
where
    I: IntoIterator<Item = &'a str>,
{
    let candidates: Vec<&str> = candidates.into_iter().collect();
    let word_len = word.chars().count();
    let best = candidates
        .iter()
        .map(|c| (levenshtein(word, c), *c))
        .filter(|&(d, _)| d <= 2 && d < word_len)
        .min_by_key(|&(d, _)| d);
    if let Some((_, c)) = best {
        return Some(c);
    }
    let lower = word.to_lowercase();
    candidates.into_iter().find(|c| {
        let c_lower = c.to_lowercase();
        let (short, long) = if lower.len() <= c_lower.len() {
            (&lower, &c_lower)
        } else {
            (&c_lower, &lower)
        };
        short.chars().count() >= 3 && long.starts_with(short.as_str())
    })
}

/// The Levenshtein distance between two strings, in characters.
pub fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// `; did you mean "X"?` or nothing.
pub(crate) fn did_you_mean<'a, I>(word: &str, candidates: I) -> String
where
    I: IntoIterator<Item = &'a str>,
{
    suggest(word, candidates).map_or_else(String::new, |s| format!("; did you mean {s:?}?"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances() {
        assert_eq!(levenshtein("", ""), 0);
        assert_eq!(levenshtein("comand", "command"), 1);
        assert_eq!(levenshtein("kitten", "sitting"), 3);
        assert_eq!(levenshtein("", "abc"), 3);
    }

    #[test]
    fn suggestions() {
        let keys = [
            "command",
            "environment",
            "environment_file",
            "after",
            "requires",
        ];
        assert_eq!(suggest("comand", keys), Some("command"));
        assert_eq!(suggest("requries", keys), Some("requires"));
        assert_eq!(suggest("env", keys), Some("environment"));
        assert_eq!(suggest("aftr", keys), Some("after"));
        assert_eq!(suggest("zzz", keys), None);
        assert_eq!(suggest("x", ["no", "always"]), None);
        assert_eq!(suggest("dbb", ["db", "web"]), Some("db"));
    }
}
