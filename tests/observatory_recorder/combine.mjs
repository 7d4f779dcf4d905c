import fs from "node:fs";
const files = ["cookies","cors","cross-origin-embedder-policy","cross-origin-opener-policy","cross-origin-resource-policy","csp","redirection","referrer-policy","strict-transport-security","subresource-integrity","x-content-type-options","x-frame-options","fixtures"];
const NAMES = {cookiesTest:"cookies",crossOriginResourceSharingTest:"cross-origin-resource-sharing",crossOriginEmbedderPolicyTest:"cross-origin-embedder-policy",crossOriginOpenerPolicyTest:"cross-origin-opener-policy",crossOriginResourcePolicyTest:"cross-origin-resource-policy",contentSecurityPolicyTest:"content-security-policy",redirectionTest:"redirection",referrerPolicyTest:"referrer-policy",strictTransportSecurityTest:"strict-transport-security",subresourceIntegrityTest:"subresource-integrity",xContentTypeOptionsTest:"x-content-type-options",xFrameOptionsTest:"x-frame-options",scan:null};
const cases = [];
const seen = new Map();
for (const f of files) for (const r of JSON.parse(fs.readFileSync(`/tmp/rec_${f}.json`))) {
  const n = (seen.get(r.case) ?? 0) + 1; seen.set(r.case, n);
  const strip = (x) => x && { status: x.status, verified: x.verified, headers: x.headers.filter(h => h[0] !== "set-cookie" || r.jar.length > 0), ...(x.request_origin ? {request_origin: x.request_origin} : {}) };
  cases.push({
    id: `${r.file.replace("test/","")}: ${r.case}${n>1?` (#${n})`:""}`,
    test: NAMES[r.test], extra_args: r.extra_args,
    site: r.site.hostname, session_url: r.session_url, body: r.body,
    auto: strip(r.auto), http: strip(r.http), https: strip(r.https), cors: strip(r.cors),
    http_redirects: r.http_redirects, https_redirects: r.https_redirects,
    expected: r.full.error ? { result: r.expected.result, error: r.full.error } : { result: r.expected.result, score: r.full.score, grade: r.full.grade, results: r.full.results },
  });
}
const commit = process.env.COMMIT;
const doc = { source: "https://github.com/mdn/mdn-http-observatory", commit,
  note: "Inputs and results recorded from the Observatory's own test suite (test/*.test.js and the test/scanner.test.js fixtures) at this commit: each call of an analyzer test in a test case is one case; 'expected.result' is what that test returned, 'expected.score'/'grade'/'results' what the Observatory's full scan (analyzeScan) gives on the same inputs. Set-Cookie headers are kept only where the Observatory's cookie jar received them. HSTS preload facts used by the suite: bugzilla.mozilla.org (force-https, includeSubDomains), facebook.com (force-https), cloudflare.com (force-https, includeSubDomains), dropboxusercontent.com (not force-https); no other host preloaded.",
  hsts_preloaded: {"bugzilla.mozilla.org": true, "facebook.com": false, "cloudflare.com": true},
  cases };
fs.writeFileSync(process.env.OUT, JSON.stringify(doc).replaceAll(',{"id":', ',\n{"id":'));
console.log(cases.length, "cases");
const by = {}; for (const c of cases) by[c.test] = (by[c.test]??0)+1; console.log(by);
