#!/usr/bin/env python3
"""Generates Warren's AMQP 0-9-1 method and property codec from the spec XML Debian ships
(amqp-specs: /usr/share/amqp/specs/0-9-1-rabbit/amqp0-9-1.stripped.extended.xml).

Usage: amqp_codegen.py SPEC.xml OUT_DIR   -> writes OUT_DIR/amqp/methods.h and methods.cc

Decoded string and table fields are std::string_view into the frame being processed (zero copy);
tables stay raw (their entries, without the u32 length) and are decoded on demand with
decode_table(). Reserved fields are read and dropped, and written as zero/empty.

check_arguments() judges a received method's arguments as RabbitMQ 3.x's generated decoder
(rabbit_framing_amqp_0_9_1:decode_method_fields) does: the fields must fill the payload exactly,
and the short strings of methods without content must be UTF-8.
"""
import os
import sys
import xml.etree.ElementTree as ET

CPP_TYPES = {
    "octet": "uint8_t", "short": "uint16_t", "long": "uint32_t", "longlong": "uint64_t",
    "timestamp": "uint64_t", "bit": "bool", "shortstr": "std::string_view",
    "longstr": "std::string_view", "table": "std::string_view",
}
READ = {
    "octet": "r.u8()", "short": "r.u16()", "long": "r.u32()", "longlong": "r.u64()",
    "timestamp": "r.u64()", "shortstr": "r.shortstr()", "longstr": "r.longstr()",
    "table": "r.longstr()",
}
WRITE = {
    "octet": "w.u8({})", "short": "w.u16({})", "long": "w.u32({})", "longlong": "w.u64({})",
    "timestamp": "w.u64({})", "shortstr": "w.shortstr({})", "longstr": "w.longstr({})",
    "table": "w.longstr({})",
}
ZERO = {"octet": "0", "short": "0", "long": "0", "longlong": "0", "timestamp": "0",
        "shortstr": "{}", "longstr": "{}", "table": "{}"}


def camel(name):
    return "".join(p.capitalize() for p in name.replace("_", "-").split("-"))


def ident(name):
    return name.replace("-", "_")


def const_ident(name):
    return "k" + camel(name)


class Field:
    def __init__(self, el, domains):
        self.name = el.get("name")
        self.reserved = el.get("reserved") == "1"
        self.type = el.get("type") or domains[el.get("domain")]
        assert self.type in CPP_TYPES, self.type


def load(spec_path):
    root = ET.parse(spec_path).getroot()
    domains = {d.get("name"): d.get("type") for d in root.findall("domain")}
    constants = [(c.get("name"), int(c.get("value")), c.get("class")) for c in root.findall("constant")]
    classes = []
    for c in root.findall("class"):
        methods = []
        for m in c.findall("method"):
            methods.append({
                "name": m.get("name"),
                "index": int(m.get("index")),
                "content": m.get("content") == "1",
                "synchronous": m.get("synchronous") == "1",
                "fields": [Field(f, domains) for f in m.findall("field")],
            })
        props = [Field(f, domains) for f in c.findall("field")]
        classes.append({"name": c.get("name"), "index": int(c.get("index")),
                        "methods": methods, "properties": props})
    return constants, classes


def gen_decode(fields, out):
    bit = 0
    for f in fields:
        if f.type == "bit":
            if bit == 0:
                out.append("  bits = r.u8();")
            if not f.reserved:
                out.append(f"  {ident(f.name)} = ((bits >> {bit}) & 1) != 0;")
            bit = (bit + 1) % 8
            continue
        bit = 0
        if f.reserved:
            out.append(f"  (void){READ[f.type]};")
        else:
            out.append(f"  {ident(f.name)} = {READ[f.type]};")


def gen_check(fields, has_content, out):
    """Reads every field (reserved ones too) and collects the short strings RabbitMQ checks for
    UTF-8: those of methods without content (it skips content-bearing methods for speed)."""
    utf8 = []
    bit = 0
    for f in fields:
        if f.type == "bit":
            if bit == 0:
                out.append("      (void)r.u8();")
            bit = (bit + 1) % 8
            continue
        bit = 0
        if f.type == "shortstr" and not has_content:
            name = f"s{len(utf8)}"
            utf8.append(name)
            out.append(f"      std::string_view {name} = r.shortstr();")
        else:
            out.append(f"      (void){READ[f.type]};")
    out.append(f"      return arguments_verdict(r, {{{', '.join(utf8)}}});")


def gen_encode(fields, out):
    i = 0
    while i < len(fields):
        f = fields[i]
        if f.type == "bit":
            group = []
            while i < len(fields) and fields[i].type == "bit" and len(group) < 8:
                group.append(fields[i])
                i += 1
            terms = [f"(uint8_t({ident(g.name)}) << {n})" for n, g in enumerate(group) if not g.reserved]
            out.append(f"  w.u8(static_cast<uint8_t>({' | '.join(terms) if terms else '0'}));")
            continue
        value = ZERO[f.type] if f.reserved else ident(f.name)
        if f.reserved and f.type in ("shortstr", "longstr", "table"):
            value = "std::string_view{}"
        out.append("  " + WRITE[f.type].format(value) + ";")
        i += 1


def main():
    spec, out_dir = sys.argv[1], sys.argv[2]
    constants, classes = load(spec)
    os.makedirs(os.path.join(out_dir, "amqp"), exist_ok=True)
    os.makedirs(os.path.join(out_dir, "common"), exist_ok=True)
    h, cc = [], []
    h.append("// GENERATED by tools/amqp_codegen.py from " + os.path.basename(spec) + ". Do not edit.")
    h.append("#pragma once\n#include <cstdint>\n#include <string_view>\n#include \"common/basic_properties.h\"\n#include \"common/wire.h\"\n")
    h.append("namespace warren::amqp {\n")
    for name, value, cls in constants:
        h.append(f"inline constexpr uint16_t {const_ident(name)} = {value};")
    h.append("")
    h.append("// True for reply codes the spec classes as connection-level (hard) errors.")
    h.append("constexpr bool is_hard_error(uint16_t code) {\n  switch (code) {")
    for name, value, cls in constants:
        if cls == "hard-error":
            h.append(f"    case {value}:")
    h.append("      return true;\n    default:\n      return false;\n  }\n}\n")

    cc.append("// GENERATED by tools/amqp_codegen.py. Do not edit.")
    cc.append("#include \"amqp/methods.h\"\n\n#include <initializer_list>\n\n#include \"common/utf8.h\"\n\nnamespace warren::amqp {\n")

    all_methods = []
    for c in classes:
        h.append(f"inline constexpr uint16_t k{camel(c['name'])}Class = {c['index']};")
    h.append("")
    for c in classes:
        for m in c["methods"]:
            sname = camel(c["name"]) + camel(m["name"])
            all_methods.append((c, m, sname))
            fields = m["fields"]
            h.append(f"struct {sname} {{")
            h.append(f"  static constexpr uint16_t kClassId = {c['index']};")
            h.append(f"  static constexpr uint16_t kMethodId = {m['index']};")
            h.append(f"  static constexpr uint32_t kId = (uint32_t({c['index']}) << 16) | {m['index']};")
            h.append(f"  static constexpr std::string_view kName = \"{c['name']}.{m['name']}\";")
            h.append(f"  static constexpr bool kHasContent = {'true' if m['content'] else 'false'};")
            h.append(f"  static constexpr bool kSynchronous = {'true' if m['synchronous'] else 'false'};")
            for f in fields:
                if not f.reserved:
                    init = "{}" if f.type != "bit" else "false"
                    h.append(f"  {CPP_TYPES[f.type]} {ident(f.name)}{{{'' if init == '{}' else init}}};")
            h.append("  // Reads the arguments (after class and method ids); false when malformed.")
            h.append("  bool decode(Reader& r);")
            h.append("  // Writes class id, method id and arguments.")
            h.append("  void encode(Writer& w) const;")
            h.append("};\n")
            body = []
            if any(f.type == "bit" for f in fields):
                body.append("  uint8_t bits = 0;")
            gen_decode(fields, body)
            if any(f.type == "bit" for f in fields):
                body.append("  (void)bits;")
            cc.append(f"bool {sname}::decode(Reader& r) {{")
            cc.extend(body)
            cc.append("  return r.ok();\n}\n")
            enc = [f"  w.u16(kClassId);", f"  w.u16(kMethodId);"]
            gen_encode(fields, enc)
            cc.append(f"void {sname}::encode(Writer& w) const {{")
            cc.extend(enc)
            cc.append("}\n")

    # Content properties (only the basic class has them). They describe a message, not a method,
    # so they go to the protocol-neutral common library that the broker core uses too.
    basic = next(c for c in classes if c["name"] == "basic")
    props = basic["properties"]
    ph, pcc = [], []
    ph.append("// GENERATED by tools/amqp_codegen.py from " + os.path.basename(spec) + ". Do not edit.")
    ph.append("#pragma once\n#include <cstdint>\n#include <string_view>\n#include \"common/wire.h\"\n")
    ph.append("namespace warren {\n")
    ph.append("// A message's content-header properties (AMQP 0-9-1 basic class, RabbitMQ's message")
    ph.append("// format); flag bit 15 is the first property.")
    ph.append("struct BasicProperties {")
    for n, p in enumerate(props):
        ph.append(f"  static constexpr uint16_t kFlag{camel(p.name)} = 1u << {15 - n};")
    ph.append("  uint16_t flags = 0;")
    for p in props:
        ph.append(f"  {CPP_TYPES[p.type]} {ident(p.name)}{{}};")
    for p in props:
        ph.append(f"  bool has_{ident(p.name)}() const {{ return flags & kFlag{camel(p.name)}; }}")
    ph.append("  // Reads flags and the present properties; false when malformed.")
    ph.append("  bool decode(Reader& r);")
    ph.append("  void encode(Writer& w) const;")
    ph.append("};\n")
    ph.append("}  // namespace warren")
    pcc.append("// GENERATED by tools/amqp_codegen.py. Do not edit.")
    pcc.append("#include \"common/basic_properties.h\"\n\nnamespace warren {\n")
    pcc.append("bool BasicProperties::decode(Reader& r) {\n  flags = r.u16();")
    pcc.append("  // A continuation bit (bit 0) would announce more flag words; basic has none.")
    pcc.append("  if (flags & 1) return false;")
    for p in props:
        pcc.append(f"  if (flags & kFlag{camel(p.name)}) {ident(p.name)} = {READ[p.type]};")
    pcc.append("  return r.ok();\n}\n")
    pcc.append("void BasicProperties::encode(Writer& w) const {\n  w.u16(flags);")
    for p in props:
        pcc.append(f"  if (flags & kFlag{camel(p.name)}) " + WRITE[p.type].format(ident(p.name)) + ";")
    pcc.append("}\n")
    pcc.append("}  // namespace warren")

    # Name / content lookups and the dispatcher.
    h.append("// \"class.method\" for known ids, empty otherwise.")
    h.append("std::string_view method_name(uint16_t class_id, uint16_t method_id);")
    h.append("bool method_has_content(uint16_t class_id, uint16_t method_id);\n")
    h.append("// What RabbitMQ's decoder makes of a received method's arguments (the payload after the class")
    h.append("// and method ids): kMalformed when they end early or bytes are left over (its binary pattern")
    h.append("// must match the whole payload), kBadUtf8 when a short string of a method without content is")
    h.append("// not UTF-8 as RabbitMQ reads it (see common/utf8.h). Field tables are not looked into.")
    h.append("enum class ArgumentsCheck { kOk, kUnknownMethod, kMalformed, kBadUtf8 };")
    h.append("ArgumentsCheck check_arguments(uint16_t class_id, uint16_t method_id, std::string_view args);")
    h.append("// Whether check_arguments() looks at more than dispatch_method() does: a UTF-8 check of short")
    h.append("// strings. For the other methods (basic.publish, basic.ack...) decoding in dispatch_method() is")
    h.append("// the same check, so a receiver may skip check_arguments() and save walking the frame twice.")
    h.append("bool method_checks_utf8(uint16_t class_id, uint16_t method_id);\n")
    cc.append("std::string_view method_name(uint16_t class_id, uint16_t method_id) {")
    cc.append("  switch ((uint32_t(class_id) << 16) | method_id) {")
    for c, m, s in all_methods:
        cc.append(f"    case {s}::kId: return {s}::kName;")
    cc.append("    default: return {};\n  }\n}\n")
    cc.append("bool method_has_content(uint16_t class_id, uint16_t method_id) {")
    cc.append("  switch ((uint32_t(class_id) << 16) | method_id) {")
    for c, m, s in all_methods:
        if m["content"]:
            cc.append(f"    case {s}::kId:")
    cc.append("      return true;\n    default:\n      return false;\n  }\n}\n")
    cc.append("namespace {\n")
    cc.append("ArgumentsCheck arguments_verdict(const Reader& r, std::initializer_list<std::string_view> utf8) {")
    cc.append("  if (!r.ok() || !r.empty()) return ArgumentsCheck::kMalformed;")
    cc.append("  for (std::string_view s : utf8)")
    cc.append("    if (!is_rabbit_utf8(s)) return ArgumentsCheck::kBadUtf8;")
    cc.append("  return ArgumentsCheck::kOk;")
    cc.append("}\n")
    cc.append("}  // namespace\n")
    cc.append("ArgumentsCheck check_arguments(uint16_t class_id, uint16_t method_id, std::string_view args) {")
    cc.append("  Reader r(args);")
    cc.append("  switch ((uint32_t(class_id) << 16) | method_id) {")
    for c, m, s_ in all_methods:
        cc.append(f"    case {s_}::kId: {{")
        gen_check(m["fields"], m["content"], cc)
        cc.append("    }")
    cc.append("    default:\n      return ArgumentsCheck::kUnknownMethod;\n  }\n}\n")
    cc.append("bool method_checks_utf8(uint16_t class_id, uint16_t method_id) {")
    cc.append("  switch ((uint32_t(class_id) << 16) | method_id) {")
    for c, m, s_ in all_methods:
        if not m["content"] and any(f.type == "shortstr" for f in m["fields"]):
            cc.append(f"    case {s_}::kId:")
    cc.append("      return true;\n    default:\n      return false;\n  }\n}\n")

    h.append("// Decodes the method with the given ids from r and calls handler.on(method). Unknown ids call")
    h.append("// handler.on_unknown_method(class_id, method_id); malformed arguments call")
    h.append("// handler.on_malformed_method(class_id, method_id, args), and so do bytes left over after the")
    h.append("// arguments (RabbitMQ's decoder matches the whole payload); args is what r held. All three must")
    h.append("// return the same type.")
    h.append("template <class Handler>")
    h.append("auto dispatch_method(uint16_t class_id, uint16_t method_id, Reader& r, Handler& handler)")
    h.append("    -> decltype(handler.on_unknown_method(class_id, method_id)) {")
    h.append("  std::string_view args(reinterpret_cast<const char*>(r.position()), r.remaining());")
    h.append("  switch ((uint32_t(class_id) << 16) | method_id) {")
    for c, m, s in all_methods:
        h.append(f"    case {s}::kId: {{")
        h.append(f"      {s} m;")
        h.append(f"      if (!m.decode(r) || !r.empty()) return handler.on_malformed_method(class_id, method_id, args);")
        h.append(f"      return handler.on(m);")
        h.append("    }")
    h.append("    default:\n      return handler.on_unknown_method(class_id, method_id);\n  }\n}\n")
    h.append("}  // namespace warren::amqp")
    cc.append("}  // namespace warren::amqp")

    for name, lines in (("amqp/methods.h", h), ("amqp/methods.cc", cc),
                        ("common/basic_properties.h", ph), ("common/basic_properties.cc", pcc)):
        path = os.path.join(out_dir, name)
        text = "\n".join(lines) + "\n"
        if not os.path.exists(path) or open(path).read() != text:
            with open(path, "w") as f:
                f.write(text)


if __name__ == "__main__":
    main()
