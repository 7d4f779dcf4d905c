const s = await import("./src/scanner/index.js");
globalThis.__analyze = s.analyzeScan;
const { RECORDS } = await import("./record.js");
await import("./" + process.env.CASEFILE);
process.on("beforeExit", () => { require_fs(); });
function require_fs(){ import("node:fs").then(fs => { if (!globalThis.__written) { globalThis.__written=1; fs.writeFileSync(process.env.OUT, JSON.stringify(RECORDS)); } }); }
