
export const RECORDS = [];
let depth = 0;
function hdrs(h){ if(!h) return null; const out=[]; for (const [k,v] of Object.entries(h.toJSON ? h.toJSON() : h)) { if (Array.isArray(v)) for (const x of v) out.push([k.toLowerCase(), String(x)]); else if (v!==undefined && v!==null && v!==false) out.push([k.toLowerCase(), String(v)]); } return out; }
function jar(s){ try { return s.jar.serializeSync().cookies; } catch(e){ return []; } }
function resp(r){ if(!r) return null; return { status: r.status, verified: r.verified, headers: hdrs(r.headers), request_origin: r.request?.headers?.origin ?? r.request?.headers?.Origin ?? null, http_equiv: r.httpEquiv ? Object.fromEntries(r.httpEquiv) : {} }; }
export function wrap(name, real){
  return function(requests, ...rest){
    depth++;
    let out; try { out = real(requests, ...rest); } finally { depth--; }
    if (depth===0 && !globalThis.__inScan) {
      let full=null;
      try { globalThis.__inScan=true; const s = globalThis.__analyze(requests); full={score:s.scan.score, grade:s.scan.grade, results:Object.fromEntries(Object.values(s.tests).map(t=>[t.name??t.constructor.name, t.result]))}; } catch(e){ full={error:String(e.message)}; } finally { globalThis.__inScan=false; }
      const site = requests.site;
      RECORDS.push({ file: process.env.CASEFILE, case: globalThis.__caseName, test: name, extra_args: rest.length,
        site: site ? {hostname: site.hostname, port: site.port ?? null, path: site.path ?? null} : null,
        session_url: requests.session?.url?.href ?? null,
        jar: jar(requests.session), body: requests.resources?.path ?? "",
        auto: resp(requests.responses.auto), http: resp(requests.responses.http), https: resp(requests.responses.https), cors: resp(requests.responses.cors),
        http_redirects: (requests.responses.httpRedirects||[]).map(r=>[r.url.href, r.status]),
        https_redirects: (requests.responses.httpsRedirects||[]).map(r=>[r.url.href, r.status]),
        expected: { result: out.result, pass: out.pass }, full });
    }
    return out;
  };
}
