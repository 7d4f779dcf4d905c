// Plain-HTTP variants of the recorded cases: the same page served over http:// only
// (no HTTPS answer, the http chain not redirecting), graded by the Observatory's analyzeScan.
const s = await import("./src/scanner/index.js");
const { AxiosHeaders } = await import("axios");
const { Session } = await import("./src/retriever/session.js");
const { Site } = await import("./src/site.js");
const { Requests } = await import("./src/types.js");
const { parseHttpEquivHeaders } = await import("./src/retriever/utils.js");
import fs from "node:fs";
const doc = JSON.parse(fs.readFileSync(process.env.IN));
const out = [];
for (const c of doc.cases) {
  if (c.expected.error) continue;
  const req = new Requests(Site.fromSiteString(c.site));
  const mk = (r) => r && { headers: new AxiosHeaders(Object.fromEntries(group(r.headers))), status: r.status, statusText: "", verified: true, data: "", config: { headers: new AxiosHeaders() }, request: { headers: new AxiosHeaders(r.request_origin ? { origin: r.request_origin } : {}) } };
  req.responses.auto = mk(c.auto);
  req.responses.http = mk(c.auto);
  req.responses.https = null;
  req.responses.cors = mk(c.cors);
  const url = new URL(c.session_url); url.protocol = "http:";
  req.responses.httpRedirects = [{ url, status: c.auto.status }];
  req.responses.httpsRedirects = [];
  req.resources.path = c.body;
  req.session = new Session(url);
  for (const [k, v] of c.auto.headers) if (k === "set-cookie") { try { req.session.jar.setCookieSync(v, url.href, { http: true }); } catch {} }
  req.responses.auto.httpEquiv = c.body ? parseHttpEquivHeaders(c.body, url.href) : new Map();
  let expected;
  try { const r = s.analyzeScan(req); expected = { score: r.scan.score, grade: r.scan.grade, results: Object.fromEntries(Object.values(r.tests).map(t => [t.name ?? t.constructor.name, t.result])) }; }
  catch (e) { expected = { error: String(e.message) }; }
  const jarNames = req.session.jar.serializeSync().cookies.length;
  if (c.auto.headers.some(h => h[0] === "set-cookie") && jarNames === 0) throw new Error("jar differs over http for " + c.id);
  out.push({ id: c.id + " [over plain HTTP]", plain_http_of: c.id, expected });
}
doc.cases.push(...out);
doc.note += " Cases with 'plain_http_of' are the named case's page served over http:// only (session URL http://, no HTTPS answer, the http chain that one answer, the same headers, body and CORS answer), graded by the Observatory's analyzeScan at the same commit.";
fs.writeFileSync(process.env.OUT, JSON.stringify(doc).replaceAll(',{"id":', ',\n{"id":'));
console.log(out.length, "plain-HTTP cases");
function group(h){ const m = new Map(); for (const [k,v] of h) { if (m.has(k)) { const o = m.get(k); m.set(k, Array.isArray(o) ? [...o, v] : [o, v]); } else m.set(k, k === "set-cookie" ? [v] : v); } return m; }
