//! opsguard's HTTP grading against the MDN HTTP Observatory's own test cases: every case of
//! `tests/observatory_cases.json` (inputs and the Observatory's results, recorded from its
//! test suite at the commit the file names) graded by `checks::observatory`; the score and
//! grade must equal the Observatory's on at least 95% of them, and each test's own result
//! too.

use opsguard::checks::observatory::exchange::{Exchange, Response, is_preloaded};
use opsguard::checks::observatory::{analyze, score};
use reqwest::Url;
use serde_json::Value;
use std::collections::BTreeMap;

fn response(v: &Value) -> Option<Response> {
    let v = v.as_object()?;
    Some(Response {
        status: v["status"].as_u64().unwrap() as u16,
        verified: v["verified"].as_bool().unwrap_or(false),
        headers: v["headers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| (h[0].as_str().unwrap().into(), h[1].as_str().unwrap().into()))
            .collect(),
    })
}

fn exchange(case: &Value) -> Exchange {
    let session_url = Url::parse(case["session_url"].as_str().unwrap()).unwrap();
    let auto = response(&case["auto"]).unwrap();
    let cookies = auto
        .all("set-cookie")
        .into_iter()
        .map(|c| (session_url.clone(), c.to_string()))
        .collect();
    Exchange {
        site: case["site"].as_str().unwrap().into(),
        session_url,
        http: response(&case["http"]),
        https: response(&case["https"]),
        cors: response(&case["cors"]),
        cors_origin: case["cors"]["request_origin"].as_str().map(str::to_string),
        body: case["body"].as_str().unwrap_or("").into(),
        http_redirects: case["http_redirects"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    Url::parse(r[0].as_str().unwrap()).unwrap(),
                    r[1].as_u64().unwrap() as u16,
                )
            })
            .collect(),
        cookies,
        auto,
    }
}

/// The named case's page served over http:// only: no HTTPS answer, one plain answer.
fn over_plain_http(original: &Value) -> Exchange {
    let mut ex = exchange(original);
    let _ = ex.session_url.set_scheme("http");
    ex.https = None;
    ex.http = Some(ex.auto.clone());
    ex.http_redirects = vec![(ex.session_url.clone(), ex.auto.status)];
    for (from, _) in &mut ex.cookies {
        *from = ex.session_url.clone();
    }
    ex
}

fn cases() -> (Value, Vec<Value>) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/observatory_cases.json");
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let cases = doc["cases"].as_array().unwrap().clone();
    (doc, cases)
}

#[test]
fn scores_and_grades_equal_the_observatorys_on_its_own_test_cases() {
    let (doc, cases) = cases();
    assert!(
        cases.len() > 200,
        "the recorded suite has {} cases",
        cases.len()
    );
    let preloaded: BTreeMap<String, bool> =
        serde_json::from_value(doc["hsts_preloaded"].clone()).unwrap();
    let preload = |host: &str| preloaded.get(host).copied();
    assert_eq!(is_preloaded(&preload, "www.cloudflare.com"), Some(true));

    let by_id: BTreeMap<&str, &Value> = cases
        .iter()
        .map(|c| (c["id"].as_str().unwrap(), c))
        .collect();
    let plain = cases
        .iter()
        .filter(|c| c.get("plain_http_of").is_some())
        .count();
    assert!(plain > 200, "{plain} cases over plain HTTP");
    let (mut same_grade, mut same_result, mut tested) = (0, 0, 0);
    // Every test's result in every case, beside the score: (equal, compared).
    let (mut same_each, mut each) = (0, 0);
    let mut differences = Vec::new();
    for case in &cases {
        let id = case["id"].as_str().unwrap();
        let expected = &case["expected"];
        let ex = match case["plain_http_of"].as_str() {
            Some(original) => over_plain_http(by_id[original]),
            None => exchange(case),
        };
        let got = analyze(&ex, &preload);
        let Ok(outcomes) = got else {
            // The Observatory refuses to grade this page too.
            if expected.get("error").is_some() {
                same_grade += 1;
            } else {
                differences.push(format!("{id}: not graded: {got:?}"));
            }
            continue;
        };
        let (points, grade) = score(&outcomes);
        let mine: BTreeMap<&str, &str> = outcomes
            .iter()
            .map(|o| (o.test, o.result.as_str()))
            .collect();
        if let Some(test) = case["test"].as_str() {
            tested += 1;
            if mine.get(test).copied() == expected["result"].as_str() {
                same_result += 1;
            }
        }
        let theirs_all: BTreeMap<String, String> =
            serde_json::from_value(expected["results"].clone()).unwrap_or_default();
        for (test, result) in &theirs_all {
            each += 1;
            same_each += usize::from(mine.get(test.as_str()) == Some(&result.as_str()));
        }
        if expected["score"].as_i64() == Some(points as i64) && expected["grade"] == grade {
            same_grade += 1;
        } else {
            let theirs: BTreeMap<String, String> =
                serde_json::from_value(expected["results"].clone()).unwrap_or_default();
            let wrong: Vec<String> = theirs
                .iter()
                .filter(|(t, r)| mine.get(t.as_str()).copied() != Some(r.as_str()))
                .map(|(t, r)| format!("{t}: {:?} ≠ {r}", mine.get(t.as_str())))
                .collect();
            differences.push(format!(
                "{id}: {points} {grade} ≠ {} {} ({})",
                expected["score"],
                expected["grade"],
                wrong.join("; ")
            ));
        }
    }
    let total = cases.len();
    println!(
        "score and grade equal on {same_grade} of {total}; the case's own test result equal on \
         {same_result} of {tested}; every test's result equal on {same_each} of {each}"
    );
    for d in &differences {
        println!("  {d}");
    }
    assert!(
        same_grade * 100 >= total * 95,
        "score and grade equal on only {same_grade} of {total}:\n{}",
        differences.join("\n")
    );
    assert!(
        same_result * 100 >= tested * 95,
        "results equal on only {same_result} of {tested}"
    );
    assert!(each > 4000, "{each} results compared");
    assert!(
        same_each * 100 >= each * 95,
        "every test's result equal on only {same_each} of {each}"
    );
}
