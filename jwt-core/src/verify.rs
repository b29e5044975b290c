//! Token verification: structure, header, key selection, signature, then claims.

use std::borrow::Cow;
use std::cell::{Cell, OnceCell};
use std::ops::Range;
use std::rc::Rc;

use serde_json::{Map, Number, Value};

use crate::b64url;
use crate::error::{Error, Reason};
use crate::header;
use crate::json::{self, Field};
use crate::keys::KeySet;
use crate::text::quoted;

/// Longest token accepted, in bytes.
pub const MAX_TOKEN_LEN: usize = 16 * 1024;

/// Claim checks beyond the signature.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Policy {
    /// Clock skew tolerated on `exp` and `nbf`, in seconds.
    pub leeway: u64,
    /// Accepted `iss` values; empty accepts any (or none).
    pub issuers: Vec<String>,
    /// Accepted `aud` values; empty accepts any (or none).
    pub audiences: Vec<String>,
    pub require_sub: bool,
    /// A token without `exp` is accepted (NGINX Plus's rule); otherwise `exp` is required.
    pub exp_optional: bool,
}

/// Where a string claim is in a `Jwt`'s text.
#[derive(Debug, Clone)]
enum Located {
    Absent,
    /// A string without escapes, as received.
    At(Range<usize>),
    /// Anything else: read from the claims' map.
    Elsewhere,
}

/// A verified token whose claims passed the policy.
///
/// It keeps the decoded JSON text only: a cached token's memory is what its cache entry
/// counts. Maps of the header and claims are built per request, by `Claims`, when a variable
/// or a header asks for one.
#[derive(Debug, Clone)]
pub struct Jwt {
    /// The header's JSON, then the payload's.
    text: String,
    header_len: usize,
    /// Where `sub` sits in `text` when it is a string without escapes: `$jwt_sub` on a cache
    /// hit then reads it without a map.
    sub: Located,
    /// Where `jti` sits in `text`, as `sub`: a revocation check reads it without a map.
    jti: Located,
    /// `iat` in whole seconds when it is a number: a revocation by subject compares it.
    iat: Option<i64>,
    /// `exp` and `nbf` as verified, for the re-check of a cache hit.
    exp: Option<Number>,
    nbf: Option<Number>,
    /// `nbf` (or the dawn of time) and `exp` when both are integers: a cache hit then
    /// re-checks the clock with two comparisons.
    window: Option<(i128, i128)>,
}

impl Jwt {
    /// Re-checks `exp` and `nbf` for `now`: what can change for a token already verified
    /// under the same keys and policy (a cached one).
    pub fn check_time(&self, policy: &Policy, now: i64) -> Result<(), Error> {
        if let Some((nbf, exp)) = self.window {
            let (now, leeway) = (i128::from(now), i128::from(policy.leeway));
            if now < exp.saturating_add(leeway) && now.saturating_add(leeway) >= nbf {
                return Ok(());
            }
        }
        // Fractional times, and every failure (it needs its message).
        let exp = self.exp.clone().map(Field::Num);
        let nbf = self.nbf.clone().map(Field::Num);
        check_time(exp.as_ref(), nbf.as_ref(), policy, now)
    }

    /// The decoded payload as received (valid JSON).
    pub fn payload_json(&self) -> &str {
        self.text.get(self.header_len..).unwrap_or_default()
    }

    fn header_json(&self) -> &str {
        self.text.get(..self.header_len).unwrap_or_default()
    }
}

/// A verified token as one request reads it: the token, and the maps of its header and claims,
/// built the first time something asks and dropped with the request.
#[derive(Debug)]
pub struct Claims {
    jwt: Rc<Jwt>,
    header: OnceCell<Map<String, Value>>,
    payload: OnceCell<Map<String, Value>>,
    /// A value was kept out of a header for its control characters.
    withheld: Cell<bool>,
}

impl Claims {
    pub fn new(jwt: Rc<Jwt>) -> Claims {
        Claims {
            jwt,
            header: OnceCell::new(),
            payload: OnceCell::new(),
            withheld: Cell::new(false),
        }
    }

    /// Records that a value was withheld; true the first time, so that a request logs it once.
    pub fn first_withheld(&self) -> bool {
        !self.withheld.replace(true)
    }

    pub fn jwt(&self) -> &Rc<Jwt> {
        &self.jwt
    }

    /// Exact name first, then ASCII-case-insensitive: nginx lowercases variable names.
    pub fn claim(&self, name: &str) -> Option<&Value> {
        lookup(self.payload(), name)
    }

    /// The claim of exactly this name: what a claim header carries, so that `JWT-sub` and
    /// `$jwt_sub` always agree.
    pub fn claim_exact(&self, name: &str) -> Option<&Value> {
        self.payload().get(name)
    }

    /// The value at `path` from the top of the claims, each name exact, through nested
    /// objects (`["realm_access", "roles"]`).
    pub fn claim_path(&self, path: &[String]) -> Option<&Value> {
        walk(self.payload(), path)
    }

    /// `claim_path` on the JOSE header.
    pub fn header_path(&self, path: &[String]) -> Option<&Value> {
        walk(
            self.header.get_or_init(|| object(self.jwt.header_json())),
            path,
        )
    }

    /// Same lookup rule as `claim`, on the JOSE header.
    pub fn header(&self, name: &str) -> Option<&Value> {
        lookup(
            self.header.get_or_init(|| object(self.jwt.header_json())),
            name,
        )
    }

    /// `sub` when it is a string.
    pub fn sub(&self) -> Option<&str> {
        self.located(&self.jwt.sub, "sub")
    }

    /// `jti` when it is a string.
    pub fn jti(&self) -> Option<&str> {
        self.located(&self.jwt.jti, "jti")
    }

    /// `sub` as text: a string as it is, a number as its JSON text (as `$jwt_claim_sub` reads
    /// it); `None` for anything else.
    pub fn sub_text(&self) -> Option<Cow<'_, str>> {
        self.located_text(&self.jwt.sub, "sub")
    }

    /// `jti` as text, as `sub_text`.
    pub fn jti_text(&self) -> Option<Cow<'_, str>> {
        self.located_text(&self.jwt.jti, "jti")
    }

    fn located_text(&self, at: &Located, name: &str) -> Option<Cow<'_, str>> {
        match at {
            Located::Absent => None,
            Located::At(range) => self.jwt.text.get(range.clone()).map(Cow::Borrowed),
            Located::Elsewhere => match self.payload().get(name)? {
                Value::String(s) => Some(Cow::Borrowed(s)),
                Value::Number(n) => Some(Cow::Owned(n.to_string())),
                _ => None,
            },
        }
    }

    fn located(&self, at: &Located, name: &str) -> Option<&str> {
        match at {
            Located::Absent => None,
            Located::At(range) => self.jwt.text.get(range.clone()),
            Located::Elsewhere => self.payload().get(name).and_then(Value::as_str),
        }
    }

    /// `iat` in whole seconds when it is a number.
    pub fn iat(&self) -> Option<i64> {
        self.jwt.iat
    }

    pub fn payload_json(&self) -> &str {
        self.jwt.payload_json()
    }

    fn payload(&self) -> &Map<String, Value> {
        self.payload.get_or_init(|| object(self.jwt.payload_json()))
    }
}

/// Whether `value` can be a header value as it is: no control character but HTAB (a CR or LF
/// would end the header line), no DEL.
pub fn header_safe(value: &str) -> bool {
    !value.bytes().any(|b| b < 0x20 && b != b'\t' || b == 0x7f)
}

/// JSON text made fit for a header: a line break or tab between members becomes a space and a
/// DEL inside a string the escape `\u007f`, which leaves the same JSON value. Valid JSON has no
/// other control character; any would be escaped the same way.
pub fn json_for_header(json: &str) -> Cow<'_, str> {
    if header_safe(json) && !json.contains('\t') {
        return Cow::Borrowed(json);
    }
    let mut out = String::with_capacity(json.len() + 8);
    for c in json.chars() {
        match c {
            '\t' | '\n' | '\r' => out.push(' '),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = std::fmt::Write::write_fmt(&mut out, format_args!("\\u{:04x}", c as u32));
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// The members of JSON text that `verify` checked already, so it cannot fail.
fn object(text: &str) -> Map<String, Value> {
    json::parse_object(text.as_bytes()).unwrap_or_default()
}

fn walk<'a>(map: &'a Map<String, Value>, path: &[String]) -> Option<&'a Value> {
    let (first, rest) = path.split_first()?;
    rest.iter()
        .try_fold(map.get(first)?, |value, name| value.as_object()?.get(name))
}

fn lookup<'a>(map: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    map.get(name).or_else(|| {
        map.iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value)
    })
}

/// Rendering for nginx variables and headers: a string as-is; a number or bool
/// as JSON text; null as ""; an array of scalars as its items rendered and
/// joined with ","; an array holding arrays or objects, or an object, as compact JSON.
pub fn render(value: &Value) -> Cow<'_, str> {
    match value {
        Value::Null => Cow::Borrowed(""),
        Value::Bool(true) => Cow::Borrowed("true"),
        Value::Bool(false) => Cow::Borrowed("false"),
        Value::Number(n) => Cow::Owned(n.to_string()),
        Value::String(s) => Cow::Borrowed(s),
        Value::Array(items) if items.iter().all(|v| !v.is_array() && !v.is_object()) => {
            let rendered: Vec<Cow<'_, str>> = items.iter().map(render).collect();
            Cow::Owned(rendered.join(","))
        }
        Value::Array(_) | Value::Object(_) => Cow::Owned(value.to_string()),
    }
}

/// Whether `token`'s header names a `kid` that `keys` has no key for: a key its issuer added
/// after `keys` were fetched, or a made-up one. Such a token is refused with `Reason::Key`.
pub fn names_unknown_kid(token: &[u8], keys: &KeySet) -> bool {
    let Ok([_, header_b64, _, _]) = split(token) else {
        return false;
    };
    let mut buf = [0u8; 512];
    let Ok(bytes) = b64_in(header_b64, &mut buf, "header") else {
        return false;
    };
    let Ok(header) = header::parse(&bytes) else {
        return false;
    };
    header
        .kid
        .as_deref()
        .is_some_and(|kid| keys.select(Some(kid)).is_err())
}

/// Verifies and validates one token. `now` is Unix seconds.
///
/// Checks run in a fixed order and stop at the first failure; the payload is
/// not even decoded before the signature is known to be good.
pub fn verify(token: &[u8], keys: &KeySet, policy: &Policy, now: i64) -> Result<Jwt, Error> {
    if token.is_empty() {
        return Err(Error::new(Reason::Missing, "no token"));
    }
    if token.len() > MAX_TOKEN_LEN {
        return Err(Error::new(
            Reason::TooLarge,
            format!(
                "token of {} bytes exceeds {MAX_TOKEN_LEN} bytes",
                token.len()
            ),
        ));
    }

    let [signing_input, header_b64, payload_b64, sig_b64] = split(token)?;
    if header_b64.is_empty() {
        return Err(Error::new(Reason::Malformed, "empty header segment"));
    }
    if payload_b64.is_empty() {
        return Err(Error::new(Reason::Malformed, "empty payload segment"));
    }

    // Header and signature are only looked at here: decoded on the stack when they fit
    // (any signature up to RSA-8192 does), which spares a miss two allocations.
    let (mut header_buf, mut sig_buf) = ([0u8; 512], [0u8; 1024]);
    let header_bytes = b64_in(header_b64, &mut header_buf, "header")?;
    let signature = b64_in(sig_b64, &mut sig_buf, "signature")?;
    let header = header::parse(&header_bytes)?;
    let (alg, kid) = (header.alg, header.kid.as_deref());

    let key = keys
        .select(kid)
        .map_err(|detail| Error::new(Reason::Key, detail))?;
    if key.alg != alg {
        return Err(Error::new(
            Reason::Algorithm,
            format!("token alg \"{}\" does not match {}", alg, key.alg),
        ));
    }
    if signature.is_empty() {
        return Err(Error::new(Reason::Signature, "empty signature"));
    }
    if !key.verifier.verify(signing_input, &signature) {
        return Err(Error::new(
            Reason::Signature,
            format!("invalid {alg} signature"),
        ));
    }

    // The header's text and the payload's, in the one allocation the Jwt keeps.
    let header_len = header_bytes.len();
    // The payload's base64 length bounds its decoded one: room for both, in one allocation.
    let mut text = Vec::with_capacity(header_len + payload_b64.len());
    text.extend_from_slice(&header_bytes);
    b64url::decode_append(payload_b64, &mut text).ok_or_else(|| not_base64("payload"))?;
    let payload = text.get(header_len..).unwrap_or_default();
    let [exp, nbf, iss, aud, sub, jti, iat] =
        json::scan_object(payload, ["exp", "nbf", "iss", "aud", "sub", "jti", "iat"])
            .map_err(|err| Error::new(Reason::Malformed, format!("payload: {err}")))?;
    check_time(exp.as_ref(), nbf.as_ref(), policy, now)?;
    check_claims(iss.as_ref(), aud.as_ref(), sub.as_ref(), policy)?;
    // check_time let through exp and nbf numeric or absent (exp absent only when the policy
    // allows it).
    let number = |field| match field {
        Some(Field::Num(n)) => Some(n),
        _ => None,
    };
    let (exp, nbf) = (number(exp), number(nbf));
    if exp.is_none() && !policy.exp_optional {
        return Err(Error::new(Reason::Claim, "exp is missing"));
    }
    let window = time_window(exp.as_ref(), nbf.as_ref());
    let range = |field: &Option<Field>| match field {
        None => Located::Absent,
        Some(Field::Str(Cow::Borrowed(s))) => offset_in(payload, s.as_bytes())
            .map_or(Located::Elsewhere, |at| {
                Located::At(header_len + at..header_len + at + s.len())
            }),
        Some(_) => Located::Elsewhere,
    };
    let (sub, jti) = (range(&sub), range(&jti));
    let iat = match &iat {
        Some(Field::Num(n)) => whole_seconds(n),
        _ => None,
    };

    // JSON is UTF-8 once parsed; checked all the same, as the text is handed to nginx.
    let text = String::from_utf8(text)
        .map_err(|_| Error::new(Reason::Malformed, "payload is not UTF-8"))?;
    Ok(Jwt {
        text,
        header_len,
        sub,
        jti,
        iat,
        exp,
        nbf,
        window,
    })
}

/// A time claim in whole seconds, a fraction cut off (toward the past).
fn whole_seconds(n: &Number) -> Option<i64> {
    n.as_i64().or_else(|| {
        n.as_f64()
            .filter(|f| f.is_finite())
            .map(|f| f.floor() as i64)
    })
}

/// Where `part`, a slice of `whole`, starts in it.
fn offset_in(whole: &[u8], part: &[u8]) -> Option<usize> {
    let at = (part.as_ptr() as usize).checked_sub(whole.as_ptr() as usize)?;
    (at.checked_add(part.len())? <= whole.len()).then_some(at)
}

/// (`nbf` or `i128::MIN`, `exp` or `i128::MAX`) when each present one is an integer.
fn time_window(exp: Option<&Number>, nbf: Option<&Number>) -> Option<(i128, i128)> {
    let int = |n| match Time::of(n) {
        Time::Int(t) => Some(t),
        Time::Float(_) => None,
    };
    let nbf = match nbf {
        Some(nbf) => int(nbf)?,
        None => i128::MIN,
    };
    let exp = match exp {
        Some(exp) => int(exp)?,
        None => i128::MAX,
    };
    Some((nbf, exp))
}

fn not_base64(what: &str) -> Error {
    Error::new(Reason::Malformed, format!("{what} is not valid base64url"))
}

/// The signing input ("header.payload", the token up to its second dot), then the three
/// segments; the dots found with SIMD, as a token that misses the cache is some 500 bytes.
fn split(token: &[u8]) -> Result<[&[u8]; 4], Error> {
    let mut dots = memchr::memchr_iter(b'.', token);
    let (first, second) = match (dots.next(), dots.next(), dots.next()) {
        (Some(first), Some(second), None) => (first, second),
        (Some(_), Some(_), Some(_)) => {
            return Err(Error::new(
                Reason::Malformed,
                "token has more than 3 segments",
            ))
        }
        _ => {
            return Err(Error::new(
                Reason::Malformed,
                "token has fewer than 3 segments",
            ))
        }
    };
    let segment = |from: usize, to: usize| token.get(from..to).unwrap_or_default();
    Ok([
        segment(0, second),
        segment(0, first),
        segment(first + 1, second),
        segment(second + 1, token.len()),
    ])
}

/// `segment` decoded into `buf` when it fits, into a new vector otherwise.
fn b64_in<'b>(segment: &[u8], buf: &'b mut [u8], what: &str) -> Result<Cow<'b, [u8]>, Error> {
    let len = b64url::decoded_len(segment.len()).ok_or_else(|| not_base64(what))?;
    let decoded = match buf.get_mut(..len) {
        Some(buf) => b64url::decode(segment, buf).map(|_| Cow::Borrowed(&*buf)),
        None => {
            let mut owned = vec![0; len];
            b64url::decode(segment, &mut owned).map(|_| Cow::Owned(owned))
        }
    };
    decoded.ok_or_else(|| not_base64(what))
}

/// A NumericDate compared exactly: integers in i128, fractions in f64.
#[derive(Clone, Copy)]
enum Time {
    Int(i128),
    Float(f64),
}

impl Time {
    fn of(n: &Number) -> Time {
        if let Some(i) = n.as_i64() {
            Time::Int(i128::from(i))
        } else if let Some(u) = n.as_u64() {
            Time::Int(i128::from(u))
        } else {
            Time::Float(n.as_f64().unwrap_or(f64::NAN))
        }
    }

    /// Whole seconds from `self` to `now`, saturated to i128.
    fn seconds_before(self, now: i128) -> i128 {
        match self {
            Time::Int(t) => now.saturating_sub(t),
            // `as` saturates for floats and maps NaN to 0.
            Time::Float(t) => (now as f64 - t).floor() as i128,
        }
    }

    /// Whole seconds from `now` to `self`, saturated to i128.
    fn seconds_after(self, now: i128) -> i128 {
        match self {
            Time::Int(t) => t.saturating_sub(now),
            Time::Float(t) => (t - now as f64).floor() as i128,
        }
    }
}

/// A numeric claim and its JSON number (formatted only if an error message needs it: this
/// runs on every cache hit).
fn numeric_claim<'f>(
    field: Option<&'f Field>,
    name: &str,
) -> Result<Option<(Time, &'f Number)>, Error> {
    match field {
        None => Ok(None),
        Some(Field::Num(n)) => Ok(Some((Time::of(n), n))),
        Some(_) => Err(Error::new(Reason::Claim, format!("{name} is not a number"))),
    }
}

/// `iss`, `aud` and `sub` against the policy, in that order.
fn check_claims(
    iss: Option<&Field>,
    aud: Option<&Field>,
    sub: Option<&Field>,
    policy: &Policy,
) -> Result<(), Error> {
    if !policy.issuers.is_empty() {
        match iss {
            None => return Err(Error::new(Reason::Issuer, "iss is missing")),
            Some(Field::Str(iss)) => {
                if !policy.issuers.iter().any(|accepted| accepted == iss) {
                    return Err(Error::new(
                        Reason::Issuer,
                        format!("iss {} is not accepted", quoted(iss)),
                    ));
                }
            }
            Some(_) => return Err(Error::new(Reason::Issuer, "iss is not a string")),
        }
    }

    if !policy.audiences.is_empty() {
        let accepted = |aud: &str| policy.audiences.iter().any(|a| a == aud);
        match aud {
            None => return Err(Error::new(Reason::Audience, "aud is missing")),
            Some(Field::Str(aud)) => {
                if !accepted(aud) {
                    return Err(Error::new(
                        Reason::Audience,
                        format!("aud {} is not accepted", quoted(aud)),
                    ));
                }
            }
            Some(Field::Mixed) => {
                return Err(Error::new(
                    Reason::Audience,
                    "aud array holds a value that is not a string",
                ))
            }
            Some(Field::Strs(items)) => {
                if !items.iter().any(|aud| accepted(aud)) {
                    return Err(Error::new(
                        Reason::Audience,
                        match items.as_slice() {
                            [] => "aud is an empty array".to_owned(),
                            [only] => format!("aud {} is not accepted", quoted(only)),
                            _ => format!("none of the {} aud values is accepted", items.len()),
                        },
                    ));
                }
            }
            Some(_) => {
                return Err(Error::new(
                    Reason::Audience,
                    "aud is not a string or an array of strings",
                ))
            }
        }
    }

    if policy.require_sub {
        match sub {
            None => return Err(Error::new(Reason::Subject, "sub is missing")),
            Some(Field::Str(sub)) if sub.is_empty() => {
                return Err(Error::new(Reason::Subject, "sub is empty"))
            }
            Some(Field::Str(_)) => {}
            Some(_) => return Err(Error::new(Reason::Subject, "sub is not a string")),
        }
    }
    Ok(())
}

/// `exp` (required unless the policy makes it optional) and `nbf` against the clock, with the
/// policy's leeway.
fn check_time(
    exp: Option<&Field>,
    nbf: Option<&Field>,
    policy: &Policy,
    now: i64,
) -> Result<(), Error> {
    let now = i128::from(now);
    let leeway = i128::from(policy.leeway);

    match numeric_claim(exp, "exp")? {
        None if policy.exp_optional => {}
        None => return Err(Error::new(Reason::Claim, "exp is missing")),
        Some((exp, exp_text)) => {
            // Expired when now >= exp + leeway, i.e. exp + leeway - now <= 0.
            let expired = match exp {
                Time::Int(exp) => exp.saturating_add(leeway) <= now,
                Time::Float(exp) => exp + leeway as f64 <= now as f64,
            };
            if expired {
                let ago = exp.seconds_before(now).max(0);
                return Err(Error::new(
                    Reason::Expired,
                    format!("exp {exp_text} is {ago}s in the past"),
                ));
            }
        }
    }

    if let Some((nbf, nbf_text)) = numeric_claim(nbf, "nbf")? {
        let early = match nbf {
            Time::Int(nbf) => now.saturating_add(leeway) < nbf,
            Time::Float(nbf) => (now.saturating_add(leeway) as f64) < nbf,
        };
        if early {
            let ahead = nbf.seconds_after(now).max(0);
            return Err(Error::new(
                Reason::NotYetValid,
                format!("nbf {nbf_text} is {ahead}s in the future"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
