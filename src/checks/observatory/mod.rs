//! The MDN HTTP Observatory's scoring algorithm (mdn/mdn-http-observatory, algorithm
//! version 6), test by test: twelve tests each give one result; a result's modifier comes
//! from the Observatory's score table; the score is 100 plus the penalties, plus the
//! bonuses only when the penalties leave 90 or more, at least 0; the grade follows.
//! `tests/observatory_cases.json` holds the Observatory's own test cases and the scores it
//! gives them; `tests/api/checks_observatory.rs` grades them all with this module.

pub mod cookies;
pub mod csp;
pub mod csp_parse;
pub mod exchange;
pub mod headers;
pub mod html;
pub mod sri;
pub mod table;
pub mod transport;

use exchange::{Exchange, Preload};

/// Penalties must leave at least this for bonuses to count.
pub const MINIMUM_FOR_EXTRA_CREDIT: i32 = 90;

/// One test's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The Observatory's test name (`content-security-policy`, `cookies`, …).
    pub test: &'static str,
    /// Its result (`csp-not-implemented`, …).
    pub result: String,
    pub modifier: i32,
}

/// Why a page is not graded (as the Observatory refuses it).
#[derive(Debug, PartialEq, Eq)]
pub struct NotGraded(pub String);

/// Run the twelve tests on what was fetched.
pub fn analyze(ex: &Exchange, preload: Preload<'_>) -> Result<Vec<Outcome>, NotGraded> {
    let status = ex.auto.status;
    if !(200..400).contains(&status) && status != 401 && status != 403 {
        return Err(NotGraded(format!(
            "the page answered HTTP {status}; only 2xx, 3xx, 401 and 403 answers are graded"
        )));
    }
    let html = ex
        .auto
        .first("content-type")
        .and_then(|t| t.split(';').next())
        .is_some_and(|t| ["text/html", "application/xhtml+xml"].contains(&t));
    let page = html::read(&ex.body);
    let (meta_csp, meta_referrer) = if html {
        (page.meta_csp.clone(), page.meta_referrer.clone())
    } else {
        (Vec::new(), None)
    };
    let csp = csp::test(ex, &meta_csp);
    let frame_ancestors = csp
        .policy
        .as_ref()
        .is_some_and(|p| p.contains_key("frame-ancestors"));
    let (hsts, hsts_pass) = transport::hsts(ex, preload);
    let results: [(&'static str, String); 12] = [
        ("content-security-policy", csp.result.into()),
        ("cookies", cookies::test(&ex.cookies, hsts_pass).into()),
        ("cross-origin-embedder-policy", headers::coep(&ex.auto)),
        ("cross-origin-opener-policy", headers::coop(&ex.auto)),
        ("cross-origin-resource-sharing", headers::cors(ex).into()),
        ("redirection", transport::redirection(ex, preload).into()),
        (
            "referrer-policy",
            headers::referrer_policy(&ex.auto, meta_referrer.as_deref()).into(),
        ),
        ("strict-transport-security", hsts.into()),
        ("subresource-integrity", sri::test(ex, &page).into()),
        (
            "x-content-type-options",
            headers::x_content_type_options(&ex.auto).into(),
        ),
        (
            "x-frame-options",
            headers::x_frame_options(&ex.auto, frame_ancestors).into(),
        ),
        (
            "cross-origin-resource-policy",
            headers::corp(&ex.auto).into(),
        ),
    ];
    Ok(results
        .into_iter()
        .map(|(test, result)| Outcome {
            test,
            modifier: table::modifier(&result),
            result,
        })
        .collect())
}

/// The Observatory's score and grade of a set of results.
pub fn score(outcomes: &[Outcome]) -> (i32, &'static str) {
    let all: i32 = 100 + outcomes.iter().map(|o| o.modifier).sum::<i32>();
    let uncurved: i32 = 100 + outcomes.iter().map(|o| o.modifier.min(0)).sum::<i32>();
    let score = if uncurved >= MINIMUM_FOR_EXTRA_CREDIT {
        all
    } else {
        uncurved
    }
    .max(0);
    (score, grade(score))
}

/// The grade of a score: the Observatory's chart, by steps of 5, 100 and more being A+.
pub fn grade(score: i32) -> &'static str {
    const CHART: [(i32, &str); 12] = [
        (100, "A+"),
        (90, "A"),
        (85, "A-"),
        (80, "B+"),
        (70, "B"),
        (65, "B-"),
        (60, "C+"),
        (50, "C"),
        (45, "C-"),
        (40, "D+"),
        (30, "D"),
        (25, "D-"),
    ];
    CHART
        .iter()
        .find(|(min, _)| score >= *min)
        .map_or("F", |(_, g)| *g)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn o(modifier: i32) -> Outcome {
        Outcome {
            test: "t",
            result: String::new(),
            modifier,
        }
    }

    #[test]
    fn bonuses_count_only_from_90_and_the_floor_is_0() {
        assert_eq!(score(&[o(-10), o(5), o(10)]), (105, "A+"));
        assert_eq!(score(&[o(-15), o(10)]), (85, "A-"));
        assert_eq!(score(&[o(-50), o(-40), o(-25), o(-20)]), (0, "F"));
        assert_eq!(
            (grade(89), grade(24), grade(25), grade(64)),
            ("A-", "F", "D-", "C+")
        );
    }

    #[test]
    fn every_result_a_test_can_give_has_a_row() {
        for (result, _, _) in table::ROWS {
            assert_eq!(
                table::ROWS.iter().filter(|(r, _, _)| r == result).count(),
                1,
                "{result}"
            );
        }
    }
}
