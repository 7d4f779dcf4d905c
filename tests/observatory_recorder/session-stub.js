// scratch stub for fact extraction: the analyzers read only .url and .jar
import { CookieJar } from "tough-cookie";
export class Session { constructor(url){ this.url = url; this.jar = new CookieJar(); } }
export function getPageText(){ throw new Error("stub"); }
