#!/usr/bin/env python3
"""Generate tests/api/bot_api_corpus/corpus.json from the machine-readable Bot API spec.

One update body for every Update field, every Message field, every MessageEntity type (in the
text, in a quote and in the replied-to message) and every member of every union type an
update can carry, each carrying an admin's /whoami where the type allows; plus bodies with
fields, entity types, origin types and update kinds no Bot API version has yet, and bodies
malformed where opsguard reads. Each case says what the operator must see:

  reply      the /whoami answer, in the admin's private chat (the webhook says "ok")
  forwarded  the forwarded-command line (a forwarded message never runs)
  callback   an answerCallbackQuery for the press
  ignored    200 "ignored", counted on opsguard_webhook_ignored_total, nothing sent
  unparsed   200 "unparsed", counted on opsguard_webhook_unparsed_total, nothing sent

The spec is the JSON that github.com/PaulSonOfLars/telegram-bot-api-spec publishes, pinned
below by commit and SHA-256. For a new Bot API version: set SPEC_COMMIT and SPEC_SHA256 to the
new commit and the checksum of its api.json, then run (one command):

  python3 scripts/bot_api_corpus.py                  # downloads the pinned api.json
  python3 scripts/bot_api_corpus.py --spec api.json  # or reads a local copy (checked too)

and run `cargo test --test api -- bot_api_corpus`.
"""

import argparse
import hashlib
import json
import pathlib
import re
import sys
import urllib.request

SPEC_REPO = "PaulSonOfLars/telegram-bot-api-spec"
SPEC_COMMIT = "160fd99507e1c7c77e92dc90f5993d724735b51c"  # Bot API 10.1 (June 11, 2026)
SPEC_SHA256 = "0950def6a1c900792c3a1d65ab13c1ee76d2f400a761df1aa0e6245e2355070a"
OUT = pathlib.Path(__file__).resolve().parent.parent / "tests/api/bot_api_corpus/corpus.json"

FIRST_ADMIN = 500_000  # case i is sent by admin FIRST_ADMIN + i in their private chat
FIRST_UPDATE = 9_000_000
COMMAND = "/whoami"
# Message fields that decide the identity rules (opsguard's own types read these).
FORWARD_FIELDS = {"forward_origin", "is_automatic_forward", "via_bot"}
RUN_NOTHING_FIELDS = {"sender_chat"}
SCALARS = {"Integer": 1, "Float": 1.5, "String": "x", "Boolean": True, "True": True,
           "InputFile": "x"}


class Gen:
    def __init__(self, spec, admin):
        self.types = spec["types"]
        self.admin = admin

    def user(self):
        return {"id": self.admin, "is_bot": False, "first_name": "Admin"}

    def chat(self):
        return {"id": self.admin, "type": "private", "first_name": "Admin"}

    def value(self, type_name, depth=0, member=None):
        """A minimal valid value of `type_name` (its required fields only)."""
        if type_name.startswith("Array of "):
            return [self.value(type_name[len("Array of "):], depth, member)]
        if type_name in SCALARS:
            return SCALARS[type_name]
        if type_name == "User":
            return self.user()
        if type_name == "Chat":
            return self.chat()
        spec = self.types[type_name]
        if "subtypes" in spec:
            return self.value(member or spec["subtypes"][0], depth)
        if depth > 8:
            return {}
        return {f["name"]: self.field(f, depth + 1) for f in spec.get("fields", [])
                if f["required"]}

    def field(self, f, depth, member=None):
        kind = f["types"][0]
        if kind == "String":
            # Enumerated strings ("always \"user\"", "can be either \"private\", ...").
            quoted = re.findall(r'"([a-z_0-9]+)"', f["description"])
            if quoted and ("always" in f["description"] or "Type" in f["description"]):
                return quoted[0]
        return self.value(kind, depth, member)

    def message(self, **extra):
        m = self.value("Message")
        m.update({"from": self.user(), "chat": self.chat(), "text": COMMAND,
                  "entities": [entity("bot_command", 0, len(COMMAND))]})
        m.update(extra)
        return m


def entity(kind, offset, length, **extra):
    return {"type": kind, "offset": offset, "length": length, **extra}


def field_types(spec, type_name):
    return [(f["name"], f["types"][0]) for f in spec["types"].get(type_name, {}).get("fields", [])]


def base_type(t):
    while t.startswith("Array of "):
        t = t[len("Array of "):]
    return t


def path_to(spec, start, target):
    """The shortest field path from `start` to a field of type `target` (BFS), or None."""
    seen, queue = {start}, [(start, [])]
    while queue:
        here, path = queue.pop(0)
        candidates = [here]
        if "subtypes" in spec["types"].get(here, {}):
            candidates = spec["types"][here]["subtypes"]
        for owner in candidates:
            for name, t in field_types(spec, owner):
                if base_type(t) == target:
                    return path + [(owner, name, t)]
                nxt = base_type(t)
                if nxt in spec["types"] and nxt not in seen:
                    seen.add(nxt)
                    queue.append((nxt, path + [(owner, name, t)]))
    return None


def fill(gen, root, path, member):
    """`root` with the object at `path` (owner, field, type) carrying `member` at its end."""
    node = root
    for i, (owner, name, t) in enumerate(path):
        last = i == len(path) - 1
        value = gen.value(base_type(t), 1, member) if last else gen.value(base_type(t), 1)
        if not last and "subtypes" in gen.types.get(base_type(t), {}):
            value = gen.value(base_type(t), 1, path[i + 1][0])
        value = [value] if t.startswith("Array of ") else value
        node[name] = value
        node = value[0] if isinstance(value, list) else value
    return root


def cases(spec, skipped):
    out = []

    def add(name, expect, build):
        admin = FIRST_ADMIN + len(out)
        gen = Gen(spec, admin)
        kind, payload = build(gen)
        out.append({"name": name, "expect": expect, "admin": admin,
                    "update": {"update_id": FIRST_UPDATE + len(out), kind: payload}})

    def press(gen, message=None):
        q = gen.value("CallbackQuery")
        q.update({"id": f"press{gen.admin}", "from": gen.user(), "data": "x",
                  "message": message or gen.value("Message")})
        q["message"].update({"chat": gen.chat()})
        return "callback_query", q

    # Every Update field.
    for name, t in field_types(spec, "Update"):
        if name == "update_id":
            continue
        if name == "callback_query":
            add(f"Update.{name}", "callback", press)
        elif t == "Message":
            add(f"Update.{name}", "reply" if name == "message" else "ignored",
                lambda g, n=name: (n, g.message()))
        else:
            add(f"Update.{name}", "ignored", lambda g, n=name, t=t: (n, g.value(t)))
    # Every Message field, beside the command.
    for f in spec["types"]["Message"]["fields"]:
        name = f["name"]
        if name in ("from", "chat", "text", "entities"):
            continue
        expect = ("forwarded" if name in FORWARD_FIELDS else
                  "ignored" if name in RUN_NOTHING_FIELDS else "reply")
        add(f"Message.{name}", expect,
            lambda g, f=f: ("message", g.message(**{f["name"]: g.field(f, 1)})))
    # Every entity type, in the text, in the quote and in the replied-to message.
    described = next(f for f in spec["types"]["MessageEntity"]["fields"] if f["name"] == "type")
    kinds = re.findall(r'"([a-z_]+)" \(', described["description"])
    assert len(kinds) >= 20, kinds
    for k in kinds:
        def full(g, k=k):
            extra = {f["name"]: g.field(f, 1) for f in spec["types"]["MessageEntity"]["fields"]
                     if not f["required"]}
            return entity(k, 0, 7, **extra)
        add(f"MessageEntity.{k} in text", "reply", lambda g, full=full: ("message", g.message(
            entities=[entity("bot_command", 0, 7), {**full(g), "offset": 1, "length": 6}])))
        add(f"MessageEntity.{k} in quote", "reply", lambda g, full=full: ("message", g.message(
            quote={"text": "12:00", "position": 0, "entities": [full(g)]})))
        add(f"MessageEntity.{k} in reply_to_message", "reply", lambda g, full=full: (
            "message", g.message(reply_to_message={**g.value("Message"), "text": "at 12:00",
                                                   "entities": [full(g)]})))
    # Every member of every union an update can carry.
    for union, spec_union in sorted(spec["types"].items()):
        for member in spec_union.get("subtypes", []):
            if union == "MaybeInaccessibleMessage":
                add(f"{union}.{member} as a pressed button's message", "callback",
                    lambda g, m=member: press(g, g.value(m)))
            if union == "MessageOrigin":
                add(f"{union}.{member} at Message.external_reply.origin", "reply",
                    lambda g, m=member: ("message", g.message(external_reply={
                        **g.value("ExternalReplyInfo"), "origin": g.value(m)})))
            path = path_to(spec, "Message", union)
            if path:
                top = path[0][1]
                expect = ("forwarded" if top in FORWARD_FIELDS else
                          "ignored" if top in RUN_NOTHING_FIELDS else "reply")
                add(f"{union}.{member} at Message.{'.'.join(p[1] for p in path)}", expect,
                    lambda g, p=path, m=member: ("message", fill(g, g.message(), p, m)))
                continue
            for kind, t in field_types(spec, "Update"):
                path = path_to(spec, t, union) if t in spec["types"] else None
                if path:
                    add(f"{union}.{member} at Update.{kind}.{'.'.join(p[1] for p in path)}",
                        "ignored", lambda g, p=path, m=member, t=t, k=kind: (
                            k, fill(g, g.value(t), p, m)))
                    break
            else:
                if not path_to(spec, "Message", union):
                    skipped.add(union)
    # A command in a caption runs; a caption that is no command is chatter.
    add("a photo whose caption is the command", "reply", lambda g: ("message", {
        **{k: v for k, v in g.message().items() if k not in ("text", "entities")},
        "photo": [g.value("PhotoSize")], "caption": COMMAND,
        "caption_entities": [entity("bot_command", 0, 7)]}))
    add("a photo whose caption is no command", "ignored", lambda g: ("message", {
        **{k: v for k, v in g.message().items() if k not in ("text", "entities")},
        "photo": [g.value("PhotoSize")], "caption": "look"}))
    # Tomorrow's Bot API: what no version has yet changes nothing.
    future = [
        ("a Message field of a future version", "reply",
         lambda g: ("message", g.message(story_thread={"id": 1, "rich": [{"kind": "v"}]}))),
        ("an entity type of a future version", "reply", lambda g: ("message", g.message(
            entities=[entity("bot_command", 0, 7), entity("hologram", 0, 7, depth=3)]))),
        ("a future entity type in a quote", "reply", lambda g: ("message", g.message(
            quote={"text": "x", "position": 0, "entities": [entity("date_range", 0, 1)]}))),
        ("a future origin type, forwarded", "forwarded", lambda g: ("message", g.message(
            forward_origin={"type": "bot_relay", "date": 1}))),
        ("future fields on from and chat", "reply", lambda g: ("message", g.message(
            **{"from": {**g.user(), "aura": 9}, "chat": {**g.chat(), "vibe": "x"}}))),
        ("a future field on a button press", "callback", lambda g: (
            lambda k_q: (k_q[0], {**k_q[1], "haptics": True}))(press(g))),
        ("an update kind of a future version", "unparsed",
         lambda g: ("story_reaction", {"from": g.user(), "chat": g.chat()})),
        ("a message whose sender id is a string", "unparsed",
         lambda g: ("message", g.message(**{"from": {**g.user(), "id": str(g.admin)}}))),
        ("a message whose text is a number", "unparsed", lambda g: ("message", g.message(text=7))),
        ("a message without a chat type", "unparsed",
         lambda g: ("message", g.message(chat={"id": g.admin}))),
    ]
    for name, expect, build in future:
        add(name, expect, build)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--spec", help="a local api.json (default: download the pinned one)")
    args = parser.parse_args()
    if args.spec:
        raw = pathlib.Path(args.spec).read_bytes()
    else:
        url = f"https://raw.githubusercontent.com/{SPEC_REPO}/{SPEC_COMMIT}/api.json"
        raw = urllib.request.urlopen(url, timeout=60).read()
    digest = hashlib.sha256(raw).hexdigest()
    if digest != SPEC_SHA256:
        sys.exit(f"api.json has SHA-256 {digest}, not the pinned {SPEC_SHA256}")
    spec = json.loads(raw)
    skipped = set()
    all_cases = cases(spec, skipped)
    head = {"spec": f"https://github.com/{SPEC_REPO}/blob/{SPEC_COMMIT}/api.json",
            "version": spec["version"], "generated_by": "scripts/bot_api_corpus.py"}
    lines = [json.dumps(c, sort_keys=True, separators=(",", ":")) for c in all_cases]
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text("{\n" + "\n".join(f"{json.dumps(k)}: {json.dumps(v)}," for k, v in head.items())
                   + '\n"cases": [\n' + ",\n".join(lines) + "\n]}\n")
    counts = {}
    for c in all_cases:
        counts[c["expect"]] = counts.get(c["expect"], 0) + 1
    print(f"{OUT}: {len(all_cases)} cases of {spec['version']} {counts}")
    print(f"unions no update carries (outbound only): {', '.join(sorted(skipped))}")


if __name__ == "__main__":
    main()
