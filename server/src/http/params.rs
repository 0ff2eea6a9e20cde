//! Query parameters, validated (I7). Every `/api/v1` route declares the parameters it takes
//! ([`accepts`]); a parameter it does not take, or one given twice, is refused before the handler
//! runs, and each value is parsed with its bounds here: dates within 0001-01-01..9999-12-31 whose
//! Europe/Amsterdam midnight is an instant, page sizes within the route's stated maximum, cursors
//! from an earlier page. Each refusal is a 400 with a code naming the parameter's problem, never a
//! panic and never a silently ignored typo.

use axum::extract::{Query, Request, State};
use axum::http::{StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use time::{Date, Month};

use super::{ApiError, ApiResult};
use crate::report;

/// The parameter every route takes: the token, for clients that cannot set a header.
const TOKEN: &str = "token";

/// The first date a parameter may name.
const FIRST_DATE: Date = match Date::from_calendar_date(1, Month::January, 1) {
    Ok(d) => d,
    Err(_) => panic!("0001-01-01 is a date"),
};
/// The last date a parameter may name.
const LAST_DATE: Date = match Date::from_calendar_date(9999, Month::December, 31) {
    Ok(d) => d,
    Err(_) => panic!("9999-12-31 is a date"),
};

/// A page size: how many items a list answer holds at most, by default and at most.
#[derive(Debug, Clone, Copy)]
pub(super) struct PageSize {
    /// Without `limit`.
    pub default: usize,
    /// The largest `limit` accepted.
    pub max: usize,
}

/// The query parameters of one request, checked against what its route takes.
#[derive(Debug, Default)]
pub(super) struct Params {
    pairs: Vec<(String, String)>,
}

fn invalid(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, code, message)
}

impl Params {
    /// Parses the query of `uri`, refusing a name outside `allowed` (and `token`) or given
    /// twice.
    pub(super) fn parse(uri: &Uri, allowed: &[&str]) -> ApiResult<Params> {
        let Query(pairs) = Query::<Vec<(String, String)>>::try_from_uri(uri)
            .map_err(|_| invalid("unreadable_query", "the query string cannot be read"))?;
        for (i, (name, _)) in pairs.iter().enumerate() {
            if name != TOKEN && !allowed.contains(&name.as_str()) {
                let takes = if allowed.is_empty() {
                    "no parameters".to_owned()
                } else {
                    allowed.join(", ")
                };
                return Err(invalid(
                    "unknown_parameter",
                    format!("this route takes {takes}; not {}", shorten(name)),
                ));
            }
            if pairs[..i].iter().any(|(earlier, _)| earlier == name) {
                return Err(invalid(
                    "repeated_parameter",
                    format!("give {} once", shorten(name)),
                ));
            }
        }
        Ok(Params { pairs })
    }

    /// The value of `name`, if given.
    pub(super) fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// `name` as a local date `YYYY-MM-DD` from 0001-01-01 to 9999-12-31, if given.
    pub(super) fn date(&self, name: &str) -> ApiResult<Option<Date>> {
        self.get(name).map(|v| date(name, v)).transpose()
    }

    /// `limit`: a whole number from 1 to `size.max`, `size.default` when absent.
    pub(super) fn limit(&self, size: PageSize) -> ApiResult<usize> {
        match self.get("limit") {
            None => Ok(size.default),
            Some(v) => v
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=size.max).contains(n))
                .ok_or_else(|| {
                    invalid(
                        "invalid_limit",
                        format!("limit is a whole number from 1 to {}", size.max),
                    )
                }),
        }
    }

    /// `after`, the cursor of an earlier page, as the log position it names.
    pub(super) fn after(&self) -> ApiResult<Option<i64>> {
        self.get("after").map(cursor).transpose()
    }
}

/// A cursor as this API writes it: a log or row position, a positive whole number.
pub(super) fn cursor(v: &str) -> ApiResult<i64> {
    v.parse::<i64>()
        .ok()
        .filter(|n| *n > 0 && v.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(invalid_cursor)
}

/// The refusal of a cursor this API did not write.
pub(super) fn invalid_cursor() -> ApiError {
    invalid(
        "invalid_cursor",
        "after is the cursor given as next by the previous page",
    )
}

/// Parses a date parameter: exactly `YYYY-MM-DD`, from 0001-01-01 to 9999-12-31, and its
/// Amsterdam midnight representable (every such date's is; checked rather than assumed).
fn date(name: &str, v: &str) -> ApiResult<Date> {
    let refuse = || {
        invalid(
            "invalid_date",
            format!("{name} is a date YYYY-MM-DD from 0001-01-01 to 9999-12-31"),
        )
    };
    let b = v.as_bytes();
    let shape = b.len() == 10
        && b.iter().enumerate().all(|(i, c)| {
            if i == 4 || i == 7 {
                *c == b'-'
            } else {
                c.is_ascii_digit()
            }
        });
    if !shape {
        return Err(refuse());
    }
    let f = time::macros::format_description!("[year]-[month]-[day]");
    let d = Date::parse(v, f).map_err(|_| refuse())?;
    if !(FIRST_DATE..=LAST_DATE).contains(&d) || report::checked_local_midnight(d).is_none() {
        return Err(refuse());
    }
    Ok(d)
}

/// The period `[from, to]` of local dates as instants: from `from`'s midnight to the midnight
/// after `to` (open when `to` is the last date).
pub(super) fn period(from: Option<Date>, to: Option<Date>) -> ApiResult<report::Period> {
    if let (Some(f), Some(t)) = (from, to)
        && f > t
    {
        return Err(invalid("invalid_period", "from is after to"));
    }
    let midnight = |d: Date| {
        report::checked_local_midnight(d)
            .ok_or_else(|| invalid("invalid_date", "that date has no local midnight"))
    };
    Ok(report::Period {
        from: from.map(midnight).transpose()?,
        to: to.and_then(|t| t.next_day()).map(midnight).transpose()?,
    })
}

/// A name as echoed in an error: at most 40 characters, so an error never grows with the input.
fn shorten(name: &str) -> String {
    let short: String = name.chars().take(40).collect();
    format!("{short:?}")
}

/// Middleware: refuses a request whose query names a parameter its route does not take
/// (`allowed`), or names one twice, before the handler runs.
pub(super) async fn accepts(
    State(allowed): State<&'static [&'static str]>,
    request: Request,
    next: Next,
) -> Response {
    match Params::parse(request.uri(), allowed) {
        Ok(_) => next.run(request).await,
        Err(e) => e.into_response(),
    }
}
