//! The JSON Schema patterns the domain publishes for the OpenAPI document accept exactly what its
//! parsers accept: each is matched (as a JSON Schema validator matches it: anywhere in the value,
//! which its `^…$` makes the whole value) against every sample of a large set — the characters
//! at each boundary of the alphabets, white space and control characters where trimming treats
//! them differently, lengths on either side of each limit — and against pseudo-random strings,
//! and must say yes exactly when the parser does.

use regex::Regex;
use rnd_domain::device::{DeviceId, DeviceToken, MAX_LABEL_CHARS, MAX_TOKEN_BYTES, parse_label};
use rnd_domain::ids::{ConnectionId, MAX_ID_LEN, OrderId, UserId};
use rnd_domain::profile::{
    MAX_PHONE_LEN, optional_text_pattern, parse_phone, parse_text, phone_pattern, text_pattern,
};

/// Every Unicode White_Space character (what `str::trim` strips), and look-alikes that are not.
const WHITE_SPACE: &[char] = &[
    '\t', '\n', '\u{b}', '\u{c}', '\r', ' ', '\u{85}', '\u{a0}', '\u{1680}', '\u{2000}',
    '\u{2005}', '\u{200a}', '\u{2028}', '\u{2029}', '\u{202f}', '\u{205f}', '\u{3000}',
];
const NOT_WHITE_SPACE: &[char] = &['\u{feff}', '\u{180e}', '\u{200b}', '\u{2060}'];
/// Control characters (Unicode Cc) at the ends of their ranges, and their neighbours.
const CONTROL: &[char] = &['\u{0}', '\u{8}', '\u{1f}', '\u{7f}', '\u{80}', '\u{9f}'];
const PRINTABLE: &[char] = &['a', 'Z', '~', '\u{a1}', 'é', '漢', '🍲', '\u{10ffff}'];

/// A tiny deterministic generator, so that a failure reproduces.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// `count` strings of up to `max_len` characters drawn from `alphabet`.
fn random_strings(seed: u64, alphabet: &[char], max_len: usize, count: usize) -> Vec<String> {
    let mut rng = XorShift(seed);
    (0..count)
        .map(|_| {
            let len = rng.below(max_len + 1);
            (0..len)
                .map(|_| alphabet[rng.below(alphabet.len())])
                .collect()
        })
        .collect()
}

/// Asserts that `pattern` matches exactly the samples `accepts` accepts.
fn assert_agree(
    what: &str,
    patterns: &[String],
    accepts: impl Fn(&str) -> bool,
    samples: &[String],
) {
    let regexes: Vec<Regex> = patterns
        .iter()
        .map(|p| {
            assert!(
                p.starts_with('^') && p.ends_with('$'),
                "{what}: {p} is anchored"
            );
            Regex::new(p).unwrap_or_else(|e| panic!("{what}: {p}: {e}"))
        })
        .collect();
    let mut accepted = 0;
    for sample in samples {
        let by_pattern = regexes.iter().all(|r| r.is_match(sample));
        let by_parser = accepts(sample);
        assert_eq!(
            by_pattern, by_parser,
            "{what}: the pattern says {by_pattern}, the parser {by_parser}, for {sample:?}"
        );
        accepted += usize::from(by_parser);
    }
    // The samples are worth something only if both answers occur.
    assert!(
        accepted > 0 && accepted < samples.len(),
        "{what}: {accepted} of {} accepted",
        samples.len()
    );
}

/// Texts around the limit `max`: every kind of character at each end and inside, padded with
/// every kind of white space, and cores of `max - 1`, `max` and `max + 1` characters.
fn text_samples(max: usize) -> Vec<String> {
    let mut cores: Vec<String> = vec![String::new(), "a".into(), "Ada Lovelace".into()];
    for c in WHITE_SPACE
        .iter()
        .chain(NOT_WHITE_SPACE)
        .chain(CONTROL)
        .chain(PRINTABLE)
    {
        cores.push(format!("{c}"));
        cores.push(format!("a{c}b"));
        cores.push(format!("{c}b"));
        cores.push(format!("a{c}"));
    }
    for n in [max - 1, max, max + 1] {
        cores.push("x".repeat(n));
        cores.push(format!("{}🍲", "x".repeat(n - 1)));
        cores.push(format!("x{}x", " ".repeat(n - 2)));
    }
    let mut pads: Vec<String> = vec![String::new(), "  ".into(), "\u{3000}\t".into()];
    pads.extend(WHITE_SPACE.iter().map(|c| c.to_string()));
    pads.push("\u{feff}".into());
    pads.push("\u{0}".into());
    let mut samples = Vec::new();
    for core in &cores {
        for (i, pad) in pads.iter().enumerate() {
            samples.push(format!("{pad}{core}"));
            samples.push(format!("{core}{pad}"));
            samples.push(format!("{pad}{core}{}", pads[(i + 1) % pads.len()]));
        }
    }
    let alphabet: Vec<char> = WHITE_SPACE
        .iter()
        .chain(NOT_WHITE_SPACE)
        .chain(CONTROL)
        .chain(PRINTABLE)
        .chain(['a', 'b', ' ', ' '].iter())
        .copied()
        .collect();
    samples.extend(random_strings(max as u64, &alphabet, 8, 3000));
    samples
}

#[test]
fn the_text_pattern_accepts_exactly_the_texts_parse_text_accepts() {
    for max in [100, 200, 500] {
        // GIVEN texts around the limit WHEN the pattern and parse_text judge them THEN they agree
        assert_agree(
            &format!("text_pattern({max})"),
            &[text_pattern(max)],
            |s| parse_text("text", s, max).is_ok(),
            &text_samples(max),
        );
    }
}

#[test]
fn the_optional_text_pattern_accepts_blank_and_exactly_the_texts_parse_label_accepts() {
    // GIVEN labels around the limit, blank ones among them
    // WHEN the pattern and parse_label judge them THEN they agree
    assert_agree(
        "optional_text_pattern(MAX_LABEL_CHARS)",
        &[optional_text_pattern(MAX_LABEL_CHARS)],
        |s| parse_label("locale", Some(s)).is_ok(),
        &text_samples(MAX_LABEL_CHARS),
    );
    // AND for notes (blank notes are none; others are texts)
    assert_agree(
        "optional_text_pattern(500)",
        &[optional_text_pattern(500)],
        |s| s.trim().is_empty() || parse_text("notes", s, 500).is_ok(),
        &text_samples(500),
    );
}

#[test]
fn the_phone_patterns_together_accept_exactly_the_phones_parse_phone_accepts() {
    // GIVEN phone numbers: digit counts and lengths on either side of the limits, every
    // separator, a plus where it may and may not be, white space and strange characters
    let mut samples = Vec::new();
    for digits in [0, 6, 7, 8, 15, 16] {
        for shape in [
            "", "+", "+ ", "(", "+1 (", " ", "\t", "a", "++", "\u{a0}", "\u{0}",
        ] {
            let number: String = (0..digits)
                .map(|i| char::from(b'0' + (i % 10) as u8))
                .collect();
            samples.push(format!("{shape}{number}"));
            samples.push(format!("{number}{shape}"));
            samples.push(format!("{shape}{number}{shape}"));
        }
    }
    for separators in [0, 10, 17, 18, 25, 26] {
        for digits in [7, 15] {
            let number = "5".repeat(digits);
            let sep = "-".repeat(separators);
            samples.push(format!("{sep}{number}"));
            samples.push(format!("+{sep}{number}"));
            samples.push(format!("  {number}{sep}\n"));
        }
    }
    let alphabet: Vec<char> = "0123456789 +-.()a\t\u{a0}\u{3000}\u{feff}"
        .chars()
        .collect();
    samples.extend(random_strings(7, &alphabet, 40, 5000));
    // WHEN the two patterns and parse_phone judge them THEN they agree
    assert_agree(
        "phone_pattern() and text_pattern(MAX_PHONE_LEN)",
        &[phone_pattern(), text_pattern(MAX_PHONE_LEN)],
        |s| parse_phone(s).is_ok(),
        &samples,
    );
}

/// Strings of `alphabet` and of its near misses, of lengths 0, 1, `max` and `max + 1`.
fn id_samples(alphabet: &str, misses: &str, max: usize) -> Vec<String> {
    let mut samples: Vec<String> = vec![String::new()];
    for c in alphabet.chars().chain(misses.chars()) {
        samples.push(c.to_string());
        samples.push(format!("a{c}b"));
        samples.push(c.to_string().repeat(max));
        samples.push(c.to_string().repeat(max + 1));
    }
    let all: Vec<char> = alphabet.chars().chain(misses.chars()).collect();
    samples.extend(random_strings(max as u64, &all, 12, 2000));
    samples
}

/// An id type: its name, pattern, alphabet, longest length and parser.
type IdCase = (&'static str, &'static str, String, usize, fn(&str) -> bool);

/// Characters just outside every id alphabet here.
const MISSES: &str = " #%&*,/:;=?@[\\]^`{|}~+äé\u{0}\n\u{a0}🍲";

#[test]
fn each_id_pattern_accepts_exactly_the_ids_its_parser_accepts() {
    let letters = "AZaz09MGn5";
    let cases: [IdCase; 5] = [
        (
            "OrderId",
            OrderId::PATTERN,
            format!("{letters}-_."),
            MAX_ID_LEN,
            |s| OrderId::parse(s).is_ok(),
        ),
        (
            "UserId",
            UserId::PATTERN,
            format!("{letters}-_.@|:"),
            MAX_ID_LEN,
            |s| UserId::parse(s).is_ok(),
        ),
        (
            "ConnectionId",
            ConnectionId::PATTERN,
            format!("{letters}-_.=+/"),
            MAX_ID_LEN,
            |s| ConnectionId::parse(s).is_ok(),
        ),
        (
            "DeviceId",
            DeviceId::PATTERN,
            format!("{letters}-"),
            64,
            |s| DeviceId::parse(s).is_ok(),
        ),
        (
            "DeviceToken",
            DeviceToken::PATTERN,
            format!("{letters}-_:."),
            MAX_TOKEN_BYTES,
            |s| DeviceToken::parse(s).is_ok(),
        ),
    ];
    for (what, pattern, alphabet, max, accepts) in cases {
        // GIVEN strings of the id's alphabet and of near misses, at and past its longest
        // WHEN the pattern and the parser judge them THEN they agree
        assert_agree(
            what,
            &[pattern.to_owned()],
            accepts,
            &id_samples(&alphabet, MISSES, max),
        );
    }
}
