#include "common/field_table.h"

#include <cstring>

namespace warren {
namespace {

constexpr int kMaxDepth = 64;

bool decode_value(Reader& r, FieldValue& out, int depth);

bool decode_entries(Reader& r, FieldTable& t, int depth) {
  while (!r.empty()) {
    std::string_view key = r.shortstr();
    FieldValue v;
    if (!r.ok() || !decode_value(r, v, depth)) return false;
    t.entries.emplace_back(std::string(key), std::move(v));
  }
  return r.ok();
}

bool decode_value(Reader& r, FieldValue& out, int depth) {
  if (depth > kMaxDepth) return false;
  char tag = static_cast<char>(r.u8());
  switch (tag) {
    case 't': out.v = r.u8() != 0; break;
    case 'b': out.v = static_cast<int8_t>(r.u8()); break;
    case 'B': out.v = r.u8(); break;
    case 's': out.v = static_cast<int16_t>(r.u16()); break;
    case 'u': out.v = r.u16(); break;
    case 'I': out.v = static_cast<int32_t>(r.u32()); break;
    case 'i': out.v = r.u32(); break;
    case 'l': out.v = static_cast<int64_t>(r.u64()); break;
    case 'f': {
      uint32_t bits = r.u32();
      float f;
      std::memcpy(&f, &bits, 4);
      out.v = f;
      break;
    }
    case 'd': {
      uint64_t bits = r.u64();
      double d;
      std::memcpy(&d, &bits, 8);
      out.v = d;
      break;
    }
    case 'D': {
      Decimal d;
      d.scale = r.u8();
      d.value = r.u32();
      out.v = d;
      break;
    }
    case 'S': out.v = std::string(r.longstr()); break;
    case 'x': out.v = ByteArray{std::string(r.longstr())}; break;
    case 'T': out.v = Timestamp{r.u64()}; break;
    case 'V': out.v = Void{}; break;
    case 'A': {
      std::string_view body = r.longstr();
      if (!r.ok()) return false;
      Reader ar(body);
      FieldArray arr;
      while (!ar.empty()) {
        FieldValue item;
        if (!decode_value(ar, item, depth + 1)) return false;
        arr.push_back(std::move(item));
      }
      out.v = std::move(arr);
      break;
    }
    case 'F': {
      std::string_view body = r.longstr();
      if (!r.ok()) return false;
      Reader tr(body);
      auto t = std::make_shared<FieldTable>();
      if (!decode_entries(tr, *t, depth + 1)) return false;
      out.v = std::move(t);
      break;
    }
    default:
      return false;
  }
  return r.ok();
}

void encode_value(Writer& w, const FieldValue& fv) {
  w.u8(static_cast<uint8_t>(fv.tag()));
  std::visit(
      [&](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, bool>) {
          w.u8(x ? 1 : 0);
        } else if constexpr (std::is_same_v<T, int8_t> || std::is_same_v<T, uint8_t>) {
          w.u8(static_cast<uint8_t>(x));
        } else if constexpr (std::is_same_v<T, int16_t> || std::is_same_v<T, uint16_t>) {
          w.u16(static_cast<uint16_t>(x));
        } else if constexpr (std::is_same_v<T, int32_t> || std::is_same_v<T, uint32_t>) {
          w.u32(static_cast<uint32_t>(x));
        } else if constexpr (std::is_same_v<T, int64_t>) {
          w.u64(static_cast<uint64_t>(x));
        } else if constexpr (std::is_same_v<T, float>) {
          uint32_t bits;
          std::memcpy(&bits, &x, 4);
          w.u32(bits);
        } else if constexpr (std::is_same_v<T, double>) {
          uint64_t bits;
          std::memcpy(&bits, &x, 8);
          w.u64(bits);
        } else if constexpr (std::is_same_v<T, Decimal>) {
          w.u8(x.scale);
          w.u32(x.value);
        } else if constexpr (std::is_same_v<T, std::string>) {
          w.longstr(x);
        } else if constexpr (std::is_same_v<T, ByteArray>) {
          w.longstr(x.bytes);
        } else if constexpr (std::is_same_v<T, Timestamp>) {
          w.u64(x.seconds);
        } else if constexpr (std::is_same_v<T, Void>) {
        } else if constexpr (std::is_same_v<T, FieldArray>) {
          size_t at = w.size();
          w.u32(0);
          for (const auto& item : x) encode_value(w, item);
          w.patch_u32(at, static_cast<uint32_t>(w.size() - at - 4));
        } else if constexpr (std::is_same_v<T, std::shared_ptr<FieldTable>>) {
          encode_table(w, *x);
        }
      },
      fv.v);
}

}  // namespace

const FieldValue* FieldTable::find(std::string_view key) const {
  for (const auto& [k, v] : entries)
    if (k == key) return &v;
  return nullptr;
}

void FieldTable::set(std::string key, FieldValue value) {
  for (auto& [k, v] : entries) {
    if (k == key) {
      v = std::move(value);
      return;
    }
  }
  entries.emplace_back(std::move(key), std::move(value));
}

bool FieldTable::operator==(const FieldTable& o) const { return entries == o.entries; }

char FieldValue::tag() const {
  static constexpr char kTags[] = {'t', 'b', 'B', 's', 'u', 'I', 'i', 'l', 'f',
                                   'd', 'D', 'S', 'A', 'T', 'F', 'V', 'x'};
  static_assert(sizeof(kTags) == std::variant_size_v<Variant>);
  return kTags[v.index()];
}

bool FieldValue::operator==(const FieldValue& o) const {
  if (v.index() != o.v.index()) return false;
  if (auto* a = std::get_if<std::shared_ptr<FieldTable>>(&v))
    return **a == *std::get<std::shared_ptr<FieldTable>>(o.v);
  if (auto* a = std::get_if<float>(&v)) return std::memcmp(a, &std::get<float>(o.v), 4) == 0;
  if (auto* a = std::get_if<double>(&v)) return std::memcmp(a, &std::get<double>(o.v), 8) == 0;
  return v == o.v;
}

std::optional<int64_t> FieldValue::as_int() const {
  return std::visit(
      [](const auto& x) -> std::optional<int64_t> {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>)
          return static_cast<int64_t>(x);
        else
          return std::nullopt;
      },
      v);
}

std::optional<std::string_view> FieldValue::as_string() const {
  if (auto* s = std::get_if<std::string>(&v)) return std::string_view(*s);
  if (auto* b = std::get_if<ByteArray>(&v)) return std::string_view(b->bytes);
  return std::nullopt;
}

std::optional<bool> FieldValue::as_bool() const {
  if (auto* b = std::get_if<bool>(&v)) return *b;
  return std::nullopt;
}

const FieldTable* FieldValue::as_table() const {
  if (auto* t = std::get_if<std::shared_ptr<FieldTable>>(&v)) return t->get();
  return nullptr;
}

std::optional<FieldTable> decode_table(std::string_view bytes) {
  Reader r(bytes);
  FieldTable t;
  if (!decode_entries(r, t, 0)) return std::nullopt;
  return t;
}

void encode_table(Writer& w, const FieldTable& t) {
  size_t at = w.size();
  w.u32(0);
  for (const auto& [k, v] : t.entries) {
    w.shortstr(k);
    encode_value(w, v);
  }
  w.patch_u32(at, static_cast<uint32_t>(w.size() - at - 4));
}

std::string encode_table_body(const FieldTable& t) {
  std::string out;
  Writer w(out);
  encode_table(w, t);
  return out.substr(4);
}

std::string_view read_raw_table(Reader& r) { return r.longstr(); }

std::string to_string(const FieldValue& fv) {
  return std::visit(
      [](const auto& x) -> std::string {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, bool>) return x ? "true" : "false";
        else if constexpr (std::is_arithmetic_v<T>) return std::to_string(x);
        else if constexpr (std::is_same_v<T, std::string>) return "\"" + x + "\"";
        else if constexpr (std::is_same_v<T, ByteArray>) return "<<" + std::to_string(x.bytes.size()) + " bytes>>";
        else if constexpr (std::is_same_v<T, Decimal>)
          return std::to_string(x.value) + "e-" + std::to_string(x.scale);
        else if constexpr (std::is_same_v<T, Timestamp>) return std::to_string(x.seconds);
        else if constexpr (std::is_same_v<T, Void>) return "void";
        else if constexpr (std::is_same_v<T, FieldArray>) {
          std::string s = "[";
          for (size_t i = 0; i < x.size(); ++i) s += (i ? "," : "") + to_string(x[i]);
          return s + "]";
        } else {
          return to_string(*x);
        }
      },
      fv.v);
}

std::string to_string(const FieldTable& t) {
  std::string s = "{";
  bool first = true;
  for (const auto& [k, v] : t.entries) {
    if (!first) s += ",";
    first = false;
    s += k + ":" + to_string(v);
  }
  return s + "}";
}

}  // namespace warren
