// Generated AMQP method codec: every method of the spec XML (read here with a tiny hand-rolled parser,
// independent of tools/amqp_codegen.py) is encoded with non-default values, compared byte-for-byte
// with an independent reference encoding, decoded back field by field, dispatched, and truncated.
#include <gtest/gtest.h>

#include <cctype>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "common/field_table.h"
#include "amqp/methods.h"
#include "common/wire.h"

namespace warren::amqp {
namespace {

using namespace std::string_literals;

std::string hex(std::string_view s) {
  static const char* d = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out.push_back(d[c >> 4]);
    out.push_back(d[c & 15]);
    out.push_back(' ');
  }
  return out;
}

std::string B(std::initializer_list<int> bytes) {
  std::string s;
  for (int b : bytes) s.push_back(static_cast<char>(b));
  return s;
}

// ---------------------------------------------------------------------------------------------
// Minimal spec XML reader.

struct SpecField {
  std::string name;
  std::string type;
  bool reserved = false;
};

struct SpecMethod {
  std::string cls;
  std::string name;
  uint16_t class_id = 0;
  uint16_t method_id = 0;
  bool content = false;
  std::vector<SpecField> fields;
};

struct Spec {
  std::vector<SpecMethod> methods;
  std::vector<SpecField> basic_properties;
  std::string error;
};

struct Tag {
  std::string name;
  bool closing = false;
  bool self_closing = false;
  std::map<std::string, std::string> attrs;
};

std::vector<Tag> ParseTags(const std::string& xml) {
  std::vector<Tag> tags;
  size_t i = 0;
  while ((i = xml.find('<', i)) != std::string::npos) {
    if (xml.compare(i, 4, "<!--") == 0) {
      i = xml.find("-->", i);
      if (i == std::string::npos) break;
      i += 3;
      continue;
    }
    if (xml.compare(i, 2, "<?") == 0) {
      i = xml.find("?>", i);
      if (i == std::string::npos) break;
      i += 2;
      continue;
    }
    size_t end = xml.find('>', i);
    if (end == std::string::npos) break;
    std::string inner = xml.substr(i + 1, end - i - 1);
    i = end + 1;
    Tag t;
    if (!inner.empty() && inner[0] == '/') {
      t.closing = true;
      inner.erase(0, 1);
    }
    if (!inner.empty() && inner.back() == '/') {
      t.self_closing = true;
      inner.pop_back();
    }
    size_t p = 0;
    while (p < inner.size() && !std::isspace(static_cast<unsigned char>(inner[p]))) ++p;
    t.name = inner.substr(0, p);
    while (true) {
      size_t eq = inner.find('=', p);
      if (eq == std::string::npos) break;
      size_t ks = inner.find_first_not_of(" \t\r\n", p);
      size_t ke = inner.find_last_not_of(" \t\r\n", eq - 1);
      std::string key = inner.substr(ks, ke + 1 - ks);
      size_t q1 = inner.find('"', eq);
      size_t q2 = inner.find('"', q1 + 1);
      if (q1 == std::string::npos || q2 == std::string::npos) break;
      t.attrs[key] = inner.substr(q1 + 1, q2 - q1 - 1);
      p = q2 + 1;
    }
    tags.push_back(std::move(t));
  }
  return tags;
}

Spec LoadSpec() {
  Spec spec;
  const char* env = std::getenv("WARREN_AMQP_SPEC");
  std::string path =
      env ? env : "/usr/share/amqp/specs/0-9-1-rabbit/amqp0-9-1.stripped.extended.xml";
  std::ifstream in(path);
  if (!in) {
    spec.error = "cannot open " + path;
    return spec;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  std::map<std::string, std::string> domains;
  std::string cls;
  uint16_t cls_id = 0;
  bool in_class = false;
  bool in_method = false;
  SpecMethod cur;
  for (const Tag& t : ParseTags(ss.str())) {
    if (t.name == "domain" && !t.closing) {
      domains[t.attrs.at("name")] = t.attrs.at("type");
    } else if (t.name == "class") {
      if (t.closing) {
        in_class = false;
      } else {
        in_class = !t.self_closing;
        cls = t.attrs.at("name");
        cls_id = static_cast<uint16_t>(std::stoi(t.attrs.at("index")));
      }
    } else if (t.name == "method") {
      if (t.closing) {
        spec.methods.push_back(cur);
        in_method = false;
      } else {
        cur = SpecMethod{};
        cur.cls = cls;
        cur.class_id = cls_id;
        cur.name = t.attrs.at("name");
        cur.method_id = static_cast<uint16_t>(std::stoi(t.attrs.at("index")));
        auto c = t.attrs.find("content");
        cur.content = c != t.attrs.end() && c->second == "1";
        if (t.self_closing) spec.methods.push_back(cur);
        else in_method = true;
      }
    } else if (t.name == "field" && !t.closing) {
      SpecField f;
      f.name = t.attrs.at("name");
      auto ty = t.attrs.find("type");
      f.type = ty != t.attrs.end() ? ty->second : domains.at(t.attrs.at("domain"));
      auto r = t.attrs.find("reserved");
      f.reserved = r != t.attrs.end() && r->second == "1";
      if (in_method) cur.fields.push_back(f);
      else if (in_class && cls == "basic") spec.basic_properties.push_back(f);
    }
  }
  return spec;
}

const Spec& GetSpec() {
  static const Spec spec = LoadSpec();
  return spec;
}

const SpecMethod* FindSpec(uint16_t class_id, uint16_t method_id) {
  for (const auto& m : GetSpec().methods)
    if (m.class_id == class_id && m.method_id == method_id) return &m;
  return nullptr;
}

std::string Ident(std::string s) {
  for (char& c : s)
    if (c == '-') c = '_';
  return s;
}

// ---------------------------------------------------------------------------------------------
// Independent reference encoder driven by the spec field list.

// One field value; which member is meaningful follows from the field's wire type. (A plain struct
// rather than std::variant: GCC 12 emits spurious -Wmaybe-uninitialized for variant<..., string>.)
struct Val {
  uint64_t n = 0;
  bool b = false;
  std::string s;
};
Val Num(uint64_t n) { return Val{n, false, {}}; }
Val Bit(bool b) { return Val{0, b, {}}; }
Val Str(std::string s) { return Val{0, false, std::move(s)}; }

void EncodeField(std::string& out, const std::string& type, const Val& v) {
  Writer w(out);
  if (type == "octet") w.u8(static_cast<uint8_t>(v.n));
  else if (type == "short") w.u16(static_cast<uint16_t>(v.n));
  else if (type == "long") w.u32(static_cast<uint32_t>(v.n));
  else if (type == "longlong" || type == "timestamp") w.u64(v.n);
  else if (type == "shortstr") {
    const std::string& s = v.s;
    out.push_back(static_cast<char>(s.size()));
    out += s;
  } else if (type == "longstr" || type == "table") {
    const std::string& s = v.s;
    w.u32(static_cast<uint32_t>(s.size()));
    out += s;
  } else {
    ADD_FAILURE() << "unexpected type " << type;
  }
}

Val ZeroVal(const std::string& type) {
  if (type == "bit") return Bit(false);
  if (type == "shortstr" || type == "longstr" || type == "table") return Str("");
  return Num(0);
}

// What old clients may put into reserved fields (tickets, "known-hosts", insist, ...).
Val JunkVal(const std::string& type) {
  if (type == "bit") return Bit(true);
  if (type == "shortstr" || type == "longstr" || type == "table") return Str("rsv");
  return Num(0x7777);
}

// vals holds one value per non-reserved field; reserved fields are written as zero / empty, or
// with junk values when junk_reserved is set.
std::string EncodeArgs(const std::vector<SpecField>& fields, const std::vector<Val>& vals,
                       bool junk_reserved = false) {
  std::string out;
  size_t vi = 0;
  int bit = -1;  // bit position in the current bit octet, -1 when no octet is open
  size_t bit_at = 0;
  for (const SpecField& f : fields) {
    Val v = f.reserved ? (junk_reserved ? JunkVal(f.type) : ZeroVal(f.type)) : vals.at(vi++);
    if (f.type == "bit") {
      if (bit < 0 || bit == 8) {
        bit_at = out.size();
        out.push_back(0);
        bit = 0;
      }
      if (v.b) out[bit_at] = static_cast<char>(out[bit_at] | (1 << bit));
      ++bit;
      continue;
    }
    bit = -1;
    EncodeField(out, f.type, v);
  }
  return out;
}

Val MakeVal(const SpecMethod& m, const SpecField& f, size_t idx) {
  const std::string label = m.cls + "." + m.name + "." + f.name;
  if (f.type == "octet") return Num(0xA0 + idx);
  if (f.type == "short") return Num(0xB100 + 0x11 * idx);
  if (f.type == "long") return Num(0xC2D3E400u + idx);
  if (f.type == "longlong" || f.type == "timestamp") return Num(0xD5E6F708192A3B00ULL + idx);
  if (f.type == "shortstr") return Str(label);
  if (f.type == "longstr") return Str(label + std::string(300, 'L') + "\x00\xFF"s);
  if (f.type == "table") {
    FieldTable t;
    t.set(f.name, FieldValue(label));
    t.set("n", FieldValue(int32_t(idx)));
    return Str(encode_table_body(t));
  }
  ADD_FAILURE() << "unexpected type " << f.type;
  return Num(0);
}

template <class T>
bool CppTypeMatches(const std::string& wire) {
  if constexpr (std::is_same_v<T, bool>) return wire == "bit";
  else if constexpr (std::is_same_v<T, uint8_t>) return wire == "octet";
  else if constexpr (std::is_same_v<T, uint16_t>) return wire == "short";
  else if constexpr (std::is_same_v<T, uint32_t>) return wire == "long";
  else if constexpr (std::is_same_v<T, uint64_t>) return wire == "longlong" || wire == "timestamp";
  else if constexpr (std::is_same_v<T, std::string_view>)
    return wire == "shortstr" || wire == "longstr" || wire == "table";
  else return false;
}

template <class M, class T>
void Assign(M& m, T M::*p, const Val& v) {
  if constexpr (std::is_same_v<T, bool>) m.*p = v.b;
  else if constexpr (std::is_same_v<T, std::string_view>) m.*p = v.s;
  else m.*p = static_cast<T>(v.n);
}

template <class M, class T>
void ExpectField(const M& m, T M::*p, const Val& v, const std::string& name) {
  if constexpr (std::is_same_v<T, bool>) EXPECT_EQ(m.*p, v.b) << name;
  else if constexpr (std::is_same_v<T, std::string_view>)
    EXPECT_EQ(hex(m.*p), hex(v.s)) << name;
  else EXPECT_EQ(uint64_t(m.*p), v.n) << name;
}

// "&QueueDeclare::queue, &QueueDeclare::passive" -> {"queue", "passive"}
std::vector<std::string> MemberNames(std::string_view src) {
  std::vector<std::string> out;
  while (!src.empty()) {
    size_t comma = src.find(',');
    std::string_view part = src.substr(0, comma);
    size_t colons = part.rfind("::");
    std::string_view name = colons == std::string_view::npos ? part : part.substr(colons + 2);
    while (!name.empty() && std::isspace(static_cast<unsigned char>(name.back())))
      name.remove_suffix(1);
    while (!name.empty() && std::isspace(static_cast<unsigned char>(name.front())))
      name.remove_prefix(1);
    if (!name.empty()) out.emplace_back(name);
    if (comma == std::string_view::npos) break;
    src.remove_prefix(comma + 1);
  }
  return out;
}

template <class Want>
struct Capture {
  std::string encoded;
  std::string other;
  int calls = 0;
  int malformed = 0;
  int unknown = 0;
  int on(const Want& m) {
    ++calls;
    Writer w(encoded);
    m.encode(w);
    return 1;
  }
  template <class X>
  int on(const X&) {
    other = std::string(X::kName);
    return 2;
  }
  int on_unknown_method(uint16_t, uint16_t) {
    ++unknown;
    return 3;
  }
  int on_malformed_method(uint16_t, uint16_t, std::string_view) {
    ++malformed;
    return 4;
  }
};

std::set<uint32_t>& CheckedIds() {
  static std::set<uint32_t> ids;
  return ids;
}

template <class M, class... T>
void CheckMethod(const char* member_src, T M::*... members) {
  SCOPED_TRACE(std::string(M::kName));
  const SpecMethod* sm = FindSpec(M::kClassId, M::kMethodId);
  ASSERT_NE(sm, nullptr) << "no spec method with ids " << M::kClassId << "/" << M::kMethodId;
  CheckedIds().insert(M::kId);
  EXPECT_EQ(M::kName, sm->cls + "." + sm->name);
  EXPECT_EQ(M::kHasContent, sm->content);
  EXPECT_EQ(M::kId, (uint32_t(sm->class_id) << 16) | sm->method_id);

  std::vector<const SpecField*> live;
  std::vector<std::string> expected_names;
  for (const auto& f : sm->fields) {
    if (f.reserved) continue;
    live.push_back(&f);
    expected_names.push_back(Ident(f.name));
  }
  ASSERT_EQ(MemberNames(member_src), expected_names);
  [[maybe_unused]] size_t ti = 0;
  bool types_ok = true;
  ((types_ok = CppTypeMatches<T>(live[ti]->type) && types_ok, ++ti), ...);
  ASSERT_TRUE(types_ok) << "member C++ types do not match the spec's wire types";

  size_t nbits = 0;
  for (const SpecField* f : live) nbits += f->type == "bit";

  // Round 0 sets every bit; round r sets only the r-th bit, so a swapped bit position shows.
  std::string args;
  for (size_t round = 0; round <= nbits; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    std::vector<Val> vals;
    size_t bi = 0;
    for (size_t i = 0; i < live.size(); ++i) {
      if (live[i]->type == "bit") {
        vals.push_back(Bit(round == 0 ? true : bi == round - 1));
        ++bi;
      } else {
        vals.push_back(MakeVal(*sm, *live[i], i));
      }
    }
    args = EncodeArgs(sm->fields, vals);
    std::string ids;
    Writer(ids).u16(M::kClassId);
    Writer(ids).u16(M::kMethodId);

    M m;
    [[maybe_unused]] size_t ai = 0;
    (Assign(m, members, vals[ai++]), ...);
    std::string got;
    Writer w(got);
    m.encode(w);
    EXPECT_EQ(hex(got), hex(ids + args));

    M d;
    Reader r(args);
    ASSERT_TRUE(d.decode(r));
    EXPECT_TRUE(r.empty()) << r.remaining() << " bytes not consumed";
    [[maybe_unused]] size_t ei = 0;
    [[maybe_unused]] size_t ni = 0;
    (ExpectField(d, members, vals[ei++], expected_names[ni++]), ...);

    // Reserved fields are read and dropped whatever they hold.
    if (round == 0) {
      std::string junk = EncodeArgs(sm->fields, vals, /*junk_reserved=*/true);
      M j;
      Reader jr(junk);
      ASSERT_TRUE(j.decode(jr));
      EXPECT_TRUE(jr.empty()) << jr.remaining() << " bytes not consumed (junk reserved fields)";
      [[maybe_unused]] size_t ji = 0;
      [[maybe_unused]] size_t jn = 0;
      (ExpectField(j, members, vals[ji++], expected_names[jn++] + " (junk reserved)"), ...);
    }

    Capture<M> cap;
    Reader dr(args);
    EXPECT_EQ(dispatch_method(M::kClassId, M::kMethodId, dr, cap), 1);
    EXPECT_EQ(cap.calls, 1);
    EXPECT_EQ(cap.other, "");
    EXPECT_EQ(hex(cap.encoded), hex(ids + args));
  }

  // Every strict prefix of the arguments is malformed.
  for (size_t n = 0; n < args.size(); ++n) {
    M t;
    Reader r(reinterpret_cast<const uint8_t*>(args.data()), n);
    EXPECT_FALSE(t.decode(r)) << "prefix " << n << " of " << args.size();
    Capture<M> cap;
    Reader dr(reinterpret_cast<const uint8_t*>(args.data()), n);
    EXPECT_EQ(dispatch_method(M::kClassId, M::kMethodId, dr, cap), 4) << "prefix " << n;
    EXPECT_EQ(cap.malformed, 1);
    EXPECT_EQ(cap.calls, 0);
  }
}

#define METHOD(M, ...) CheckMethod<M>(#__VA_ARGS__ __VA_OPT__(, ) __VA_ARGS__)

TEST(CodecTest, SpecLoads) {
  ASSERT_EQ(GetSpec().error, "");
  // RabbitMQ's extended 0-9-1 spec: 60 methods (with exchange.bind/unbind, basic.nack, confirm).
  EXPECT_EQ(GetSpec().methods.size(), 60u);
  EXPECT_EQ(GetSpec().basic_properties.size(), 14u);
}

TEST(CodecTest, EveryMethodRoundTripsFieldByField) {
  ASSERT_EQ(GetSpec().error, "");
  CheckedIds().clear();
  METHOD(ConnectionStart, &ConnectionStart::version_major, &ConnectionStart::version_minor,
         &ConnectionStart::server_properties, &ConnectionStart::mechanisms,
         &ConnectionStart::locales);
  METHOD(ConnectionStartOk, &ConnectionStartOk::client_properties, &ConnectionStartOk::mechanism,
         &ConnectionStartOk::response, &ConnectionStartOk::locale);
  METHOD(ConnectionSecure, &ConnectionSecure::challenge);
  METHOD(ConnectionSecureOk, &ConnectionSecureOk::response);
  METHOD(ConnectionTune, &ConnectionTune::channel_max, &ConnectionTune::frame_max,
         &ConnectionTune::heartbeat);
  METHOD(ConnectionTuneOk, &ConnectionTuneOk::channel_max, &ConnectionTuneOk::frame_max,
         &ConnectionTuneOk::heartbeat);
  METHOD(ConnectionOpen, &ConnectionOpen::virtual_host);
  METHOD(ConnectionOpenOk);
  METHOD(ConnectionClose, &ConnectionClose::reply_code, &ConnectionClose::reply_text,
         &ConnectionClose::class_id, &ConnectionClose::method_id);
  METHOD(ConnectionCloseOk);
  METHOD(ChannelOpen);
  METHOD(ChannelOpenOk);
  METHOD(ChannelFlow, &ChannelFlow::active);
  METHOD(ChannelFlowOk, &ChannelFlowOk::active);
  METHOD(ChannelClose, &ChannelClose::reply_code, &ChannelClose::reply_text,
         &ChannelClose::class_id, &ChannelClose::method_id);
  METHOD(ChannelCloseOk);
  METHOD(ExchangeDeclare, &ExchangeDeclare::exchange, &ExchangeDeclare::type,
         &ExchangeDeclare::passive, &ExchangeDeclare::durable, &ExchangeDeclare::auto_delete,
         &ExchangeDeclare::internal, &ExchangeDeclare::no_wait, &ExchangeDeclare::arguments);
  METHOD(ExchangeDeclareOk);
  METHOD(ExchangeDelete, &ExchangeDelete::exchange, &ExchangeDelete::if_unused,
         &ExchangeDelete::no_wait);
  METHOD(ExchangeDeleteOk);
  METHOD(ExchangeBind, &ExchangeBind::destination, &ExchangeBind::source,
         &ExchangeBind::routing_key, &ExchangeBind::no_wait, &ExchangeBind::arguments);
  METHOD(ExchangeBindOk);
  METHOD(ExchangeUnbind, &ExchangeUnbind::destination, &ExchangeUnbind::source,
         &ExchangeUnbind::routing_key, &ExchangeUnbind::no_wait, &ExchangeUnbind::arguments);
  METHOD(ExchangeUnbindOk);
  METHOD(QueueDeclare, &QueueDeclare::queue, &QueueDeclare::passive, &QueueDeclare::durable,
         &QueueDeclare::exclusive, &QueueDeclare::auto_delete, &QueueDeclare::no_wait,
         &QueueDeclare::arguments);
  METHOD(QueueDeclareOk, &QueueDeclareOk::queue, &QueueDeclareOk::message_count,
         &QueueDeclareOk::consumer_count);
  METHOD(QueueBind, &QueueBind::queue, &QueueBind::exchange, &QueueBind::routing_key,
         &QueueBind::no_wait, &QueueBind::arguments);
  METHOD(QueueBindOk);
  METHOD(QueueUnbind, &QueueUnbind::queue, &QueueUnbind::exchange, &QueueUnbind::routing_key,
         &QueueUnbind::arguments);
  METHOD(QueueUnbindOk);
  METHOD(QueuePurge, &QueuePurge::queue, &QueuePurge::no_wait);
  METHOD(QueuePurgeOk, &QueuePurgeOk::message_count);
  METHOD(QueueDelete, &QueueDelete::queue, &QueueDelete::if_unused, &QueueDelete::if_empty,
         &QueueDelete::no_wait);
  METHOD(QueueDeleteOk, &QueueDeleteOk::message_count);
  METHOD(BasicQos, &BasicQos::prefetch_size, &BasicQos::prefetch_count, &BasicQos::global);
  METHOD(BasicQosOk);
  METHOD(BasicConsume, &BasicConsume::queue, &BasicConsume::consumer_tag, &BasicConsume::no_local,
         &BasicConsume::no_ack, &BasicConsume::exclusive, &BasicConsume::no_wait,
         &BasicConsume::arguments);
  METHOD(BasicConsumeOk, &BasicConsumeOk::consumer_tag);
  METHOD(BasicCancel, &BasicCancel::consumer_tag, &BasicCancel::no_wait);
  METHOD(BasicCancelOk, &BasicCancelOk::consumer_tag);
  METHOD(BasicPublish, &BasicPublish::exchange, &BasicPublish::routing_key,
         &BasicPublish::mandatory, &BasicPublish::immediate);
  METHOD(BasicReturn, &BasicReturn::reply_code, &BasicReturn::reply_text, &BasicReturn::exchange,
         &BasicReturn::routing_key);
  METHOD(BasicDeliver, &BasicDeliver::consumer_tag, &BasicDeliver::delivery_tag,
         &BasicDeliver::redelivered, &BasicDeliver::exchange, &BasicDeliver::routing_key);
  METHOD(BasicGet, &BasicGet::queue, &BasicGet::no_ack);
  METHOD(BasicGetOk, &BasicGetOk::delivery_tag, &BasicGetOk::redelivered, &BasicGetOk::exchange,
         &BasicGetOk::routing_key, &BasicGetOk::message_count);
  METHOD(BasicGetEmpty);
  METHOD(BasicAck, &BasicAck::delivery_tag, &BasicAck::multiple);
  METHOD(BasicReject, &BasicReject::delivery_tag, &BasicReject::requeue);
  METHOD(BasicRecoverAsync, &BasicRecoverAsync::requeue);
  METHOD(BasicRecover, &BasicRecover::requeue);
  METHOD(BasicRecoverOk);
  METHOD(BasicNack, &BasicNack::delivery_tag, &BasicNack::multiple, &BasicNack::requeue);
  METHOD(TxSelect);
  METHOD(TxSelectOk);
  METHOD(TxCommit);
  METHOD(TxCommitOk);
  METHOD(TxRollback);
  METHOD(TxRollbackOk);
  METHOD(ConfirmSelect, &ConfirmSelect::nowait);
  METHOD(ConfirmSelectOk);

  // Every method of the spec was covered above.
  std::set<uint32_t> spec_ids;
  for (const auto& m : GetSpec().methods) spec_ids.insert((uint32_t(m.class_id) << 16) | m.method_id);
  EXPECT_EQ(CheckedIds(), spec_ids);
}

TEST(CodecTest, MethodNameAndHasContentForEverySpecMethod) {
  ASSERT_EQ(GetSpec().error, "");
  for (const auto& m : GetSpec().methods) {
    EXPECT_EQ(method_name(m.class_id, m.method_id), m.cls + "." + m.name);
    EXPECT_EQ(method_has_content(m.class_id, m.method_id), m.content) << m.cls << "." << m.name;
  }
}

TEST(CodecTest, MethodNameAndHasContentKnownAndUnknownIds) {
  EXPECT_EQ(method_name(10, 10), "connection.start");
  EXPECT_EQ(method_name(60, 80), "basic.ack");
  EXPECT_EQ(method_name(60, 120), "basic.nack");
  EXPECT_EQ(method_name(85, 10), "confirm.select");
  EXPECT_EQ(method_name(40, 51), "exchange.unbind-ok");
  EXPECT_EQ(method_name(60, 999), "");
  EXPECT_EQ(method_name(0, 0), "");
  EXPECT_EQ(method_name(99, 10), "");
  EXPECT_EQ(method_name(40, 41), "");  // unbind-ok is 51 in RabbitMQ's extended spec
  EXPECT_EQ(method_name(10, 60), "");
  EXPECT_TRUE(method_has_content(60, 40));   // publish
  EXPECT_TRUE(method_has_content(60, 50));   // return
  EXPECT_TRUE(method_has_content(60, 60));   // deliver
  EXPECT_TRUE(method_has_content(60, 71));   // get-ok
  EXPECT_FALSE(method_has_content(60, 70));  // get
  EXPECT_FALSE(method_has_content(60, 72));  // get-empty
  EXPECT_FALSE(method_has_content(60, 80));  // ack
  EXPECT_FALSE(method_has_content(10, 10));
  EXPECT_FALSE(method_has_content(60, 41));
  EXPECT_FALSE(method_has_content(0, 0));
}

TEST(CodecTest, StaticMetadata) {
  EXPECT_EQ(BasicAck::kClassId, 60);
  EXPECT_EQ(BasicAck::kMethodId, 80);
  EXPECT_EQ(BasicAck::kId, 0x003C0050u);
  EXPECT_EQ(BasicAck::kName, "basic.ack");
  EXPECT_FALSE(BasicAck::kHasContent);
  EXPECT_FALSE(BasicAck::kSynchronous);
  EXPECT_TRUE(QueueDeclare::kSynchronous);
  EXPECT_TRUE(BasicPublish::kHasContent);
  EXPECT_FALSE(BasicPublish::kSynchronous);
  EXPECT_EQ(kFrameMethod, 1);
  EXPECT_EQ(kFrameHeader, 2);
  EXPECT_EQ(kFrameBody, 3);
  EXPECT_EQ(kFrameHeartbeat, 8);
  EXPECT_EQ(kFrameEnd, 206);
  EXPECT_EQ(kFrameMinSize, 4096);
  EXPECT_EQ(kBasicClass, 60);
  EXPECT_EQ(kConfirmClass, 85);
  EXPECT_EQ(kNotFound, 404);
  EXPECT_EQ(kPreconditionFailed, 406);
  EXPECT_TRUE(is_hard_error(kConnectionForced));
  EXPECT_TRUE(is_hard_error(kCommandInvalid));
  EXPECT_TRUE(is_hard_error(kNotAllowed));
  EXPECT_TRUE(is_hard_error(kInternalError));
  EXPECT_FALSE(is_hard_error(kAccessRefused));  // soft in the spec
  EXPECT_FALSE(is_hard_error(kNotFound));
  EXPECT_FALSE(is_hard_error(kPreconditionFailed));
  EXPECT_FALSE(is_hard_error(kReplySuccess));
  EXPECT_FALSE(is_hard_error(0));
}

// ---------------------------------------------------------------------------------------------
// Hand-checked byte encodings (as pika / RabbitMQ put them on the wire).

template <class M>
std::string Enc(const M& m) {
  std::string out;
  Writer w(out);
  m.encode(w);
  return out;
}

TEST(CodecTest, BasicAckKnownBytes) {
  BasicAck a;
  a.delivery_tag = 1;
  a.multiple = true;
  EXPECT_EQ(hex(Enc(a)), hex(B({0x00, 0x3C, 0x00, 0x50, 0, 0, 0, 0, 0, 0, 0, 1, 0x01})));
  a.multiple = false;
  a.delivery_tag = 0x0102030405060708ULL;
  EXPECT_EQ(hex(Enc(a)), hex(B({0x00, 0x3C, 0x00, 0x50, 1, 2, 3, 4, 5, 6, 7, 8, 0x00})));
}

TEST(CodecTest, QueueDeclareBitPackingFirstBitIsLsb) {
  QueueDeclare q;
  q.queue = "q";
  const std::string prefix = B({0x00, 0x32, 0x00, 0x0A, 0x00, 0x00, 0x01, 'q'});
  const std::string suffix = B({0, 0, 0, 0});
  EXPECT_EQ(hex(Enc(q)), hex(prefix + B({0x00}) + suffix));
  q.passive = true;
  EXPECT_EQ(hex(Enc(q)), hex(prefix + B({0x01}) + suffix));
  q.passive = false;
  q.durable = true;
  EXPECT_EQ(hex(Enc(q)), hex(prefix + B({0x02}) + suffix));
  q.durable = false;
  q.exclusive = true;
  EXPECT_EQ(hex(Enc(q)), hex(prefix + B({0x04}) + suffix));
  q.exclusive = false;
  q.auto_delete = true;
  EXPECT_EQ(hex(Enc(q)), hex(prefix + B({0x08}) + suffix));
  q.auto_delete = false;
  q.no_wait = true;
  EXPECT_EQ(hex(Enc(q)), hex(prefix + B({0x10}) + suffix));
  q.passive = q.durable = q.exclusive = q.auto_delete = q.no_wait = true;
  EXPECT_EQ(hex(Enc(q)), hex(prefix + B({0x1F}) + suffix));

  // pika's queue_declare(durable=True) with arguments {"x-max-length": 10}:
  std::string body = B({12}) + "x-max-length" + B({'I', 0, 0, 0, 10});
  std::string wire = prefix + B({0x02}) + B({0, 0, 0, char(body.size())}) + body;
  QueueDeclare d;
  Reader r(std::string_view(wire).substr(4));
  ASSERT_TRUE(d.decode(r));
  EXPECT_TRUE(r.empty());
  EXPECT_EQ(d.queue, "q");
  EXPECT_FALSE(d.passive);
  EXPECT_TRUE(d.durable);
  EXPECT_FALSE(d.exclusive);
  EXPECT_FALSE(d.auto_delete);
  EXPECT_FALSE(d.no_wait);
  EXPECT_EQ(hex(d.arguments), hex(body));
  auto args = decode_table(d.arguments);
  ASSERT_TRUE(args.has_value());
  EXPECT_EQ(args->find("x-max-length")->as_int(), 10);
}

TEST(CodecTest, UpperBitsOfABitOctetAreIgnoredOnDecode) {
  // QueueDeclare has 5 bits; bits 5..7 set by a sloppy client must not leak into fields.
  std::string args = B({0, 0, 1, 'q', 0xE0, 0, 0, 0, 0});
  QueueDeclare d;
  Reader r(args);
  ASSERT_TRUE(d.decode(r));
  EXPECT_FALSE(d.passive || d.durable || d.exclusive || d.auto_delete || d.no_wait);
}

TEST(CodecTest, BitGroupsSeparatedByOtherFieldsUseSeparateOctets) {
  // basic.deliver: consumer-tag, delivery-tag, redelivered(bit), exchange, routing-key.
  BasicDeliver d;
  d.consumer_tag = "ctag";
  d.delivery_tag = 7;
  d.redelivered = true;
  d.exchange = "ex";
  d.routing_key = "rk";
  EXPECT_EQ(hex(Enc(d)), hex(B({0x00, 0x3C, 0x00, 0x3C, 4, 'c', 't', 'a', 'g', 0, 0, 0, 0, 0, 0, 0,
                                7, 0x01, 2, 'e', 'x', 2, 'r', 'k'})));
  // basic.nack: delivery-tag, multiple, requeue -> one octet, requeue is bit 1.
  BasicNack n;
  n.delivery_tag = 5;
  n.requeue = true;
  EXPECT_EQ(hex(Enc(n)), hex(B({0x00, 0x3C, 0x00, 0x78, 0, 0, 0, 0, 0, 0, 0, 5, 0x02})));
}

TEST(CodecTest, ConnectionMethodsKnownBytes) {
  ConnectionTune t;
  t.channel_max = 2047;
  t.frame_max = 131072;
  t.heartbeat = 60;
  EXPECT_EQ(hex(Enc(t)),
            hex(B({0x00, 0x0A, 0x00, 0x1E, 0x07, 0xFF, 0x00, 0x02, 0x00, 0x00, 0x00, 0x3C})));

  // connection.open as pika sends it: vhost "/", reserved shortstr "", reserved bit 0.
  ConnectionOpen o;
  o.virtual_host = "/";
  EXPECT_EQ(hex(Enc(o)), hex(B({0x00, 0x0A, 0x00, 0x28, 0x01, '/', 0x00, 0x00})));

  ConnectionOpenOk ok;
  EXPECT_EQ(hex(Enc(ok)), hex(B({0x00, 0x0A, 0x00, 0x29, 0x00})));

  ChannelOpenOk cok;
  EXPECT_EQ(hex(Enc(cok)), hex(B({0x00, 0x14, 0x00, 0x0B, 0, 0, 0, 0})));

  ConnectionClose c;
  c.reply_code = 320;
  c.reply_text = "bye";
  c.class_id = 60;
  c.method_id = 40;
  EXPECT_EQ(hex(Enc(c)), hex(B({0x00, 0x0A, 0x00, 0x32, 0x01, 0x40, 3, 'b', 'y', 'e', 0x00, 0x3C,
                                0x00, 0x28})));

  TxSelect tx;
  EXPECT_EQ(hex(Enc(tx)), hex(B({0x00, 0x5A, 0x00, 0x0A})));
  ConfirmSelect cs;
  cs.nowait = true;
  EXPECT_EQ(hex(Enc(cs)), hex(B({0x00, 0x55, 0x00, 0x0A, 0x01})));
}

TEST(CodecTest, BasicPublishKnownBytes) {
  BasicPublish p;
  p.exchange = "";
  p.routing_key = "hello";
  p.mandatory = true;
  EXPECT_EQ(hex(Enc(p)),
            hex(B({0x00, 0x3C, 0x00, 0x28, 0x00, 0x00, 0x00, 5, 'h', 'e', 'l', 'l', 'o', 0x01})));
  p.mandatory = false;
  p.immediate = true;
  EXPECT_EQ(hex(Enc(p)),
            hex(B({0x00, 0x3C, 0x00, 0x28, 0x00, 0x00, 0x00, 5, 'h', 'e', 'l', 'l', 'o', 0x02})));
}

TEST(CodecTest, ReservedFieldsAreSkippedOnDecodeWhateverTheirValue) {
  // connection.open with a non-empty reserved "capabilities" and insist=1 (old clients do this).
  std::string args = B({1, '/', 5, 'c', 'a', 'p', 's', '!', 0x01});
  ConnectionOpen o;
  Reader r(args);
  ASSERT_TRUE(o.decode(r));
  EXPECT_TRUE(r.empty());
  EXPECT_EQ(o.virtual_host, "/");
  // queue.declare with a non-zero ticket.
  std::string qargs = B({0x12, 0x34, 1, 'q', 0x01, 0, 0, 0, 0});
  QueueDeclare q;
  Reader qr(qargs);
  ASSERT_TRUE(q.decode(qr));
  EXPECT_EQ(q.queue, "q");
  EXPECT_TRUE(q.passive);
  // channel.open-ok with a non-empty reserved longstr.
  std::string cargs = B({0, 0, 0, 2, 'a', 'b'});
  ChannelOpenOk c;
  Reader cr(cargs);
  ASSERT_TRUE(c.decode(cr));
  EXPECT_TRUE(cr.empty());
}

TEST(CodecTest, LongstrLengthBeyondEndIsMalformed) {
  // connection.start-ok with client-properties claiming 1000 bytes.
  std::string args = B({0, 0, 0x03, 0xE8, 'x'});
  ConnectionStartOk s;
  Reader r(args);
  EXPECT_FALSE(s.decode(r));
}

// ---------------------------------------------------------------------------------------------
// dispatch_method

struct Recorder {
  std::vector<std::string> calls;
  std::string on(const BasicAck& m) {
    return "ack " + std::to_string(m.delivery_tag) + (m.multiple ? " multiple" : "");
  }
  std::string on(const QueueDeclare& m) { return "declare " + std::string(m.queue); }
  std::string on(const BasicPublish& m) { return "publish " + std::string(m.routing_key); }
  template <class M>
  std::string on(const M&) {
    return "generic " + std::string(M::kName);
  }
  std::string on_unknown_method(uint16_t c, uint16_t m) {
    return "unknown " + std::to_string(c) + "/" + std::to_string(m);
  }
  std::string on_malformed_method(uint16_t c, uint16_t m, std::string_view) {
    return "malformed " + std::to_string(c) + "/" + std::to_string(m);
  }
};

std::string Dispatch(uint16_t c, uint16_t m, const std::string& args) {
  Recorder rec;
  Reader r(args);
  return dispatch_method(c, m, r, rec);
}

TEST(CodecTest, DispatchCallsTheMatchingOverload) {
  EXPECT_EQ(Dispatch(60, 80, B({0, 0, 0, 0, 0, 0, 0, 9, 1})), "ack 9 multiple");
  EXPECT_EQ(Dispatch(60, 80, B({0, 0, 0, 0, 0, 0, 0, 9, 0})), "ack 9");
  EXPECT_EQ(Dispatch(50, 10, B({0, 0, 2, 'q', '1', 0, 0, 0, 0, 0})), "declare q1");
  EXPECT_EQ(Dispatch(60, 40, B({0, 0, 0, 2, 'r', 'k', 0})), "publish rk");
  EXPECT_EQ(Dispatch(90, 10, ""), "generic tx.select");
  EXPECT_EQ(Dispatch(60, 120, B({0, 0, 0, 0, 0, 0, 0, 1, 3})), "generic basic.nack");
  EXPECT_EQ(Dispatch(85, 10, B({0})), "generic confirm.select");
}

TEST(CodecTest, DispatchUnknownAndMalformed) {
  EXPECT_EQ(Dispatch(60, 999, ""), "unknown 60/999");
  EXPECT_EQ(Dispatch(0, 0, ""), "unknown 0/0");
  EXPECT_EQ(Dispatch(70, 10, "abc"), "unknown 70/10");
  EXPECT_EQ(Dispatch(60, 80, B({0, 0, 0, 0, 0, 0, 0, 9})), "malformed 60/80");  // no bit octet
  EXPECT_EQ(Dispatch(60, 80, ""), "malformed 60/80");
  EXPECT_EQ(Dispatch(50, 10, B({0, 0, 5, 'q'})), "malformed 50/10");
  EXPECT_EQ(Dispatch(10, 30, B({0, 1, 0, 0})), "malformed 10/30");
}

// ---------------------------------------------------------------------------------------------
// BasicProperties

TEST(CodecTest, BasicPropertiesFlagBits) {
  EXPECT_EQ(BasicProperties::kFlagContentType, 0x8000);
  EXPECT_EQ(BasicProperties::kFlagContentEncoding, 0x4000);
  EXPECT_EQ(BasicProperties::kFlagHeaders, 0x2000);
  EXPECT_EQ(BasicProperties::kFlagDeliveryMode, 0x1000);
  EXPECT_EQ(BasicProperties::kFlagPriority, 0x0800);
  EXPECT_EQ(BasicProperties::kFlagCorrelationId, 0x0400);
  EXPECT_EQ(BasicProperties::kFlagReplyTo, 0x0200);
  EXPECT_EQ(BasicProperties::kFlagExpiration, 0x0100);
  EXPECT_EQ(BasicProperties::kFlagMessageId, 0x0080);
  EXPECT_EQ(BasicProperties::kFlagTimestamp, 0x0040);
  EXPECT_EQ(BasicProperties::kFlagType, 0x0020);
  EXPECT_EQ(BasicProperties::kFlagUserId, 0x0010);
  EXPECT_EQ(BasicProperties::kFlagAppId, 0x0008);
  EXPECT_EQ(BasicProperties::kFlagReserved, 0x0004);
}

template <class... T>
void CheckProperties(const char* member_src, T BasicProperties::*... members) {
  const auto& props = GetSpec().basic_properties;
  ASSERT_EQ(props.size(), sizeof...(T));
  std::vector<std::string> expected_names;
  for (const auto& p : props) expected_names.push_back(Ident(p.name));
  ASSERT_EQ(MemberNames(member_src), expected_names);
  [[maybe_unused]] size_t ti = 0;
  bool types_ok = true;
  ((types_ok = CppTypeMatches<T>(props[ti].type) && types_ok, ++ti), ...);
  ASSERT_TRUE(types_ok);

  SpecMethod label;
  label.cls = "basic";
  label.name = "properties";
  std::vector<Val> vals;
  for (size_t i = 0; i < props.size(); ++i) vals.push_back(MakeVal(label, props[i], i));

  // Masks: all 14, none, each one alone, and two sparse mixes.
  std::vector<uint16_t> masks = {0xFFFC, 0x0000, 0xAAA8, 0x5554};
  for (int i = 0; i < 14; ++i) masks.push_back(uint16_t(1u << (15 - i)));
  for (uint16_t mask : masks) {
    SCOPED_TRACE("flags " + std::to_string(mask));
    std::string expected;
    Writer(expected).u16(mask);
    for (size_t i = 0; i < props.size(); ++i)
      if (mask & (1u << (15 - i))) EncodeField(expected, props[i].type, vals[i]);

    BasicProperties p;
    p.flags = mask;
    [[maybe_unused]] size_t ai = 0;
    (Assign(p, members, vals[ai++]), ...);
    std::string got;
    Writer w(got);
    p.encode(w);
    EXPECT_EQ(hex(got), hex(expected));

    BasicProperties d;
    Reader r(expected);
    ASSERT_TRUE(d.decode(r));
    EXPECT_TRUE(r.empty());
    EXPECT_EQ(d.flags, mask);
    [[maybe_unused]] size_t ei = 0;
    (
        [&] {
          size_t i = ei++;
          if (mask & (1u << (15 - i))) ExpectField(d, members, vals[i], expected_names[i]);
          else ExpectField(d, members, ZeroVal(props[i].type), expected_names[i] + " (absent)");
        }(),
        ...);

    for (size_t n = 0; n < expected.size(); ++n) {
      BasicProperties t;
      Reader tr(reinterpret_cast<const uint8_t*>(expected.data()), n);
      EXPECT_FALSE(t.decode(tr)) << "prefix " << n;
    }
  }
}

TEST(CodecTest, BasicPropertiesRoundTripEveryFlagCombinationShape) {
  ASSERT_EQ(GetSpec().error, "");
  CheckProperties(
      "&BasicProperties::content_type, &BasicProperties::content_encoding, "
      "&BasicProperties::headers, &BasicProperties::delivery_mode, &BasicProperties::priority, "
      "&BasicProperties::correlation_id, &BasicProperties::reply_to, "
      "&BasicProperties::expiration, &BasicProperties::message_id, &BasicProperties::timestamp, "
      "&BasicProperties::type, &BasicProperties::user_id, &BasicProperties::app_id, "
      "&BasicProperties::reserved",
      &BasicProperties::content_type, &BasicProperties::content_encoding,
      &BasicProperties::headers, &BasicProperties::delivery_mode, &BasicProperties::priority,
      &BasicProperties::correlation_id, &BasicProperties::reply_to, &BasicProperties::expiration,
      &BasicProperties::message_id, &BasicProperties::timestamp, &BasicProperties::type,
      &BasicProperties::user_id, &BasicProperties::app_id, &BasicProperties::reserved);
}

TEST(CodecTest, BasicPropertiesKnownBytes) {
  // pika: BasicProperties(content_type="text/plain", delivery_mode=2)
  BasicProperties p;
  p.flags = BasicProperties::kFlagContentType | BasicProperties::kFlagDeliveryMode;
  p.content_type = "text/plain";
  p.delivery_mode = 2;
  p.priority = 9;  // not flagged: must not be written
  EXPECT_EQ(hex(Enc(p)),
            hex(B({0x90, 0x00, 10, 't', 'e', 'x', 't', '/', 'p', 'l', 'a', 'i', 'n', 0x02})));
  EXPECT_TRUE(p.has_content_type());
  EXPECT_TRUE(p.has_delivery_mode());
  EXPECT_FALSE(p.has_priority());
  EXPECT_FALSE(p.has_headers());

  BasicProperties d;
  std::string wire = B({0x10, 0x40, 0x01, 0, 0, 0, 0, 0x65, 0x53, 0xF1, 0x00});
  Reader r(wire);
  ASSERT_TRUE(d.decode(r));
  EXPECT_TRUE(d.has_delivery_mode());
  EXPECT_TRUE(d.has_timestamp());
  EXPECT_FALSE(d.has_content_type());
  EXPECT_EQ(d.delivery_mode, 1);
  EXPECT_EQ(d.timestamp, 0x6553F100u);
}

TEST(CodecTest, BasicPropertiesContinuationFlagIsRejected) {
  {
    std::string wire = B({0x00, 0x01});
    BasicProperties d;
    Reader r(wire);
    EXPECT_FALSE(d.decode(r));
  }
  {
    // delivery-mode present plus the continuation bit, followed by a (bogus) second flag word.
    std::string wire = B({0x10, 0x01, 0x02, 0x00, 0x00});
    BasicProperties d;
    Reader r(wire);
    EXPECT_FALSE(d.decode(r));
  }
  {
    std::string wire = B({0xFF, 0xFD});  // every flag + continuation
    BasicProperties d;
    Reader r(wire);
    EXPECT_FALSE(d.decode(r));
  }
}

TEST(CodecTest, BasicPropertiesEmpty) {
  BasicProperties p;
  EXPECT_EQ(hex(Enc(p)), hex(B({0, 0})));
  std::string wire = B({0, 0});
  BasicProperties d;
  Reader r(wire);
  ASSERT_TRUE(d.decode(r));
  EXPECT_EQ(d.flags, 0);
  EXPECT_TRUE(r.empty());
  std::string one = B({0});
  Reader r1(one);
  EXPECT_FALSE(d.decode(r1));
}

}  // namespace
}  // namespace warren::amqp
