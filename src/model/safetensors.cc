#include "model/safetensors.h"

#include <fmt/ranges.h>

#include <algorithm>
#include <bit>
#include <charconv>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>

#include "core/json_reader.h"

namespace sc {

static_assert(std::endian::native == std::endian::little, "safetensors data is little-endian");

namespace {

// The Hugging Face reader refuses larger headers; so do we.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

// Characters of a name, key or value from the file an error message quotes.
constexpr size_t kMaxShownChars = 64;

struct DTypeInfo {
  DType dtype;
  std::string_view name;
  size_t size_bytes;
};

constexpr DTypeInfo kDTypes[] = {
    {DType::kBool, "BOOL", 1}, {DType::kU8, "U8", 1},    {DType::kI8, "I8", 1},   {DType::kU16, "U16", 2},
    {DType::kI16, "I16", 2},   {DType::kF16, "F16", 2},  {DType::kBF16, "BF16", 2}, {DType::kU32, "U32", 4},
    {DType::kI32, "I32", 4},   {DType::kF32, "F32", 4},  {DType::kU64, "U64", 8}, {DType::kI64, "I64", 8},
    {DType::kF64, "F64", 8},
};

const DTypeInfo& info_of(DType dtype) {
  for (const DTypeInfo& info : kDTypes) {
    if (info.dtype == dtype) return info;
  }
  return kDTypes[0];  // unreachable: every enumerator is in the table
}

template <class T>
T load(const uint8_t* p) {
  T value;
  std::memcpy(&value, p, sizeof(T));
  return value;
}

// One tensor entry of a header being validated, before the coverage check.
struct Entry {
  TensorView view;
  uint64_t begin = 0;
  uint64_t end = 0;
};

Result<Entry> parse_entry(const std::string& path, const std::string& name, const nlohmann::json& value,
                          uint64_t data_size) {
  auto bad = [&](std::string_view what) {
    return Status::corruption("{}: tensor '{}': {}", path, text_excerpt(name, kMaxShownChars), what);
  };
  if (name.empty()) return Status::corruption("{}: a tensor has an empty name", path);
  if (!value.is_object()) return bad("entry is not a JSON object");
  for (const auto& [key, field] : value.items()) {
    if (key != "dtype" && key != "shape" && key != "data_offsets") {
      return bad(fmt::format("unknown field '{}'", text_excerpt(key, kMaxShownChars)));
    }
  }
  Entry entry;
  entry.view.name = name;

  auto dtype_it = value.find("dtype");
  if (dtype_it == value.end()) return bad("missing field 'dtype'");
  if (!dtype_it->is_string()) return bad("field 'dtype' is not a string");
  const std::string& dtype_text = dtype_it->get_ref<const std::string&>();
  std::optional<DType> dtype = dtype_from_name(dtype_text);
  if (!dtype) return bad(fmt::format("unknown dtype '{}'", text_excerpt(dtype_text, kMaxShownChars)));
  entry.view.dtype = *dtype;

  auto shape_it = value.find("shape");
  if (shape_it == value.end()) return bad("missing field 'shape'");
  if (!shape_it->is_array()) return bad("field 'shape' is not an array");
  // Overflow-checked product(shape) * element size, in bytes.
  uint64_t expected_bytes = dtype_size_bytes(*dtype);
  bool overflow = false;
  for (const nlohmann::json& dim : *shape_it) {
    if (!dim.is_number_unsigned()) {
      return bad(fmt::format("shape entry {} is not a non-negative integer", describe_json(dim)));
    }
    uint64_t d = dim.get<uint64_t>();
    if (d > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) overflow = true;
    entry.view.shape.push_back(static_cast<int64_t>(d));
    if (__builtin_mul_overflow(expected_bytes, d, &expected_bytes)) overflow = true;
  }

  auto offsets_it = value.find("data_offsets");
  if (offsets_it == value.end()) return bad("missing field 'data_offsets'");
  if (!offsets_it->is_array() || offsets_it->size() != 2 || !(*offsets_it)[0].is_number_unsigned() ||
      !(*offsets_it)[1].is_number_unsigned()) {
    return bad(fmt::format("field 'data_offsets' is {}, not [begin, end] with non-negative integers",
                           describe_json(*offsets_it)));
  }
  entry.begin = (*offsets_it)[0].get<uint64_t>();
  entry.end = (*offsets_it)[1].get<uint64_t>();
  if (entry.begin > entry.end) {
    return bad(fmt::format("data_offsets [{}, {}] end before they begin", entry.begin, entry.end));
  }
  if (entry.end > data_size) {
    return bad(fmt::format(
        "data_offsets [{}, {}] run past the end of the data region ({} bytes): the file is truncated or the "
        "offsets are wrong",
        entry.begin, entry.end, data_size));
  }
  if (overflow || expected_bytes != entry.end - entry.begin) {
    return bad(fmt::format("shape {} of {} needs {} bytes but data_offsets [{}, {}] hold {}",
                           shape_text(entry.view.shape), dtype_text,
                           overflow ? std::string("more than 2^64") : std::to_string(expected_bytes), entry.begin,
                           entry.end, entry.end - entry.begin));
  }
  entry.view.size_bytes = entry.end - entry.begin;
  return entry;
}

// Finds the first key repeated inside one JSON object, at any depth: the
// parser itself silently keeps the last one, which would let two headers
// disagree about a tensor. Also stops building the value past
// kMaxJsonDepth levels of nesting: walking or printing a deeper one is what
// crashes (the parse itself is iterative).
struct HeaderChecker {
  std::vector<std::set<std::string>> open_objects;
  std::optional<std::string> duplicate;
  bool too_deep = false;

  bool operator()(int depth, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
    using Event = nlohmann::json::parse_event_t;
    if (too_deep) return false;  // discard the rest; the header is refused
    const bool opens = event == Event::object_start || event == Event::array_start;
    if (opens && static_cast<size_t>(depth) >= kMaxJsonDepth) {
      too_deep = true;
      return false;
    }
    if (event == Event::object_start) {
      open_objects.emplace_back();
    } else if (event == Event::object_end) {
      if (!open_objects.empty()) open_objects.pop_back();
    } else if (event == Event::key && !open_objects.empty() && !duplicate) {
      const std::string& key = parsed.get_ref<const std::string&>();
      if (!open_objects.back().insert(key).second) duplicate = key;
    }
    return true;
  }
};

}  // namespace

std::string_view dtype_name(DType dtype) { return info_of(dtype).name; }

std::optional<DType> dtype_from_name(std::string_view name) {
  for (const DTypeInfo& info : kDTypes) {
    if (info.name == name) return info.dtype;
  }
  return std::nullopt;
}

size_t dtype_size_bytes(DType dtype) { return info_of(dtype).size_bytes; }

float bf16_to_f32(uint16_t bits) { return std::bit_cast<float>(static_cast<uint32_t>(bits) << 16); }

uint16_t f32_to_bf16(float value) {
  uint32_t u = std::bit_cast<uint32_t>(value);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<uint16_t>((u >> 16) | 0x0040u);  // quiet NaN
  uint32_t rounding = 0x7FFFu + ((u >> 16) & 1u);  // to nearest, ties to even
  return static_cast<uint16_t>((u + rounding) >> 16);
}

float f16_to_f32(uint16_t bits) {
  uint32_t sign = static_cast<uint32_t>(bits & 0x8000u) << 16;
  uint32_t exponent = (bits >> 10) & 0x1Fu;
  uint32_t mantissa = bits & 0x3FFu;
  if (exponent == 0) {  // zero or subnormal: mantissa * 2^-24
    float magnitude = static_cast<float>(mantissa) * 0x1p-24f;
    return sign ? -magnitude : magnitude;
  }
  if (exponent == 31) return std::bit_cast<float>(sign | 0x7F800000u | (mantissa << 13));  // inf, NaN
  return std::bit_cast<float>(sign | ((exponent + 112u) << 23) | (mantissa << 13));
}

uint16_t f32_to_f16(float value) {
  uint32_t u = std::bit_cast<uint32_t>(value);
  uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000u);
  u &= 0x7FFFFFFFu;
  if (u >= 0x47800000u) {  // >= 65536: inf, or NaN kept quiet
    return static_cast<uint16_t>(sign | (u > 0x7F800000u ? 0x7E00u : 0x7C00u));
  }
  if (u < 0x38800000u) {  // below 2^-14: subnormal result; adding 0.5 rounds to 2^-24 units
    float shifted = std::bit_cast<float>(u) + 0.5f;
    return static_cast<uint16_t>(sign | (std::bit_cast<uint32_t>(shifted) - 0x3F000000u));
  }
  uint32_t mantissa_odd = (u >> 13) & 1u;
  u += 0xC8000FFFu + mantissa_odd;  // rebias exponent 127 -> 15 and round to nearest even
  return static_cast<uint16_t>(sign | (u >> 13));
}

int64_t element_count(std::span<const int64_t> shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string shape_text(std::span<const int64_t> shape) {
  constexpr size_t kMaxShownDims = 8;  // a shape read from a file may have any number
  if (shape.size() <= kMaxShownDims) return fmt::format("[{}]", fmt::join(shape, ", "));
  return fmt::format("[{}, ... ({} dimensions)]", fmt::join(shape.first(kMaxShownDims), ", "), shape.size());
}

Status write_safetensors(const std::string& path, std::span<const TensorToWrite> tensors,
                         const std::map<std::string, std::string>& metadata) {
  std::set<std::string_view> names;
  for (const TensorToWrite& t : tensors) {
    if (t.name.empty() || t.name == "__metadata__") {
      return Status::invalid("{}: invalid tensor name '{}'", path, t.name);
    }
    if (!names.insert(t.name).second) return Status::invalid("{}: tensor '{}' given twice", path, t.name);
    for (int64_t d : t.shape) {
      if (d < 0) return Status::invalid("{}: tensor '{}' has negative shape {}", path, t.name, shape_text(t.shape));
    }
    if (t.data == nullptr && element_count(t.shape) > 0) {
      return Status::invalid("{}: tensor '{}' has no data pointer", path, t.name);
    }
  }

  // Largest elements first keeps every tensor aligned to its element size.
  std::vector<size_t> order(tensors.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return dtype_size_bytes(tensors[a].dtype) > dtype_size_bytes(tensors[b].dtype);
  });

  std::string header_text;
  try {
    nlohmann::ordered_json header = nlohmann::ordered_json::object();
    if (!metadata.empty()) {
      nlohmann::ordered_json meta = nlohmann::ordered_json::object();
      for (const auto& [key, value] : metadata) meta[key] = value;
      header["__metadata__"] = std::move(meta);
    }
    uint64_t offset = 0;
    for (size_t i : order) {
      const TensorToWrite& t = tensors[i];
      uint64_t bytes = static_cast<uint64_t>(element_count(t.shape)) * dtype_size_bytes(t.dtype);
      header[t.name] = {{"dtype", dtype_name(t.dtype)}, {"shape", t.shape}, {"data_offsets", {offset, offset + bytes}}};
      offset += bytes;
    }
    header_text = header.dump();
  } catch (const nlohmann::json::exception& e) {
    return Status::invalid("{}: cannot encode the header (names and metadata must be UTF-8): {}", path, e.what());
  }
  header_text.append((8 - header_text.size() % 8) % 8, ' ');

  SC_ASSIGN_OR_RETURN(AtomicFileWriter writer, AtomicFileWriter::open(path));
  uint64_t header_len = header_text.size();
  SC_RETURN_IF_ERROR(writer.write(&header_len, sizeof(header_len)));
  SC_RETURN_IF_ERROR(writer.write(header_text));
  for (size_t i : order) {
    const TensorToWrite& t = tensors[i];
    size_t bytes = static_cast<size_t>(element_count(t.shape)) * dtype_size_bytes(t.dtype);
    if (bytes > 0) SC_RETURN_IF_ERROR(writer.write(t.data, bytes));
  }
  return writer.commit();
}

Result<SafetensorsFile> SafetensorsFile::open(const std::string& path) {
  SC_ASSIGN_OR_RETURN(MappedFile file, MappedFile::open(path));
  const uint64_t file_size = file.size();
  if (file_size < 8) {
    return Status::corruption("{}: file is {} bytes, too short to hold the 8-byte header length", path, file_size);
  }
  const uint64_t header_len = load<uint64_t>(file.data());
  if (header_len > kMaxHeaderBytes) {
    return Status::corruption("{}: header length {} bytes is over the {} byte limit: not a safetensors file?", path,
                              header_len, kMaxHeaderBytes);
  }
  if (header_len > file_size - 8) {
    return Status::corruption("{}: header length {} bytes runs past the end of the file ({} bytes): truncated?", path,
                              header_len, file_size);
  }
  const char* header_begin = reinterpret_cast<const char*>(file.data() + 8);
  if (header_len == 0 || header_begin[0] != '{') {
    return Status::corruption("{}: header does not start with '{{': not a safetensors file?", path);
  }

  nlohmann::json header;
  HeaderChecker checker;
  try {
    header = nlohmann::json::parse(header_begin, header_begin + header_len, std::ref(checker));
  } catch (const nlohmann::json::parse_error& e) {
    return Status::corruption("{}: header is not valid JSON (byte {})", path, e.byte);
  } catch (const nlohmann::json::exception&) {
    return Status::corruption("{}: header is not valid JSON", path);
  }
  if (checker.too_deep) {
    return Status::corruption("{}: header nested more than {} levels deep", path, kMaxJsonDepth);
  }
  if (checker.duplicate) {
    return Status::corruption("{}: header has the key '{}' twice", path,
                              text_excerpt(*checker.duplicate, kMaxShownChars));
  }
  if (!header.is_object()) return Status::corruption("{}: header is not a JSON object", path);

  const uint64_t data_offset = 8 + header_len;
  const uint64_t data_size = file_size - data_offset;
  std::map<std::string, std::string> metadata;
  std::vector<Entry> entries;
  for (const auto& [name, value] : header.items()) {
    if (name == "__metadata__") {
      if (!value.is_object()) return Status::corruption("{}: __metadata__ is not a JSON object", path);
      for (const auto& [key, text] : value.items()) {
        if (!text.is_string()) {
          return Status::corruption("{}: __metadata__ entry '{}' is {}, not a string", path,
                                    text_excerpt(key, kMaxShownChars), describe_json(text));
        }
        metadata[key] = text.get<std::string>();
      }
      continue;
    }
    SC_ASSIGN_OR_RETURN(Entry entry, parse_entry(path, name, value, data_size));
    entries.push_back(std::move(entry));
  }

  // The byte ranges must tile the data region: no overlap, no hole, no tail.
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t covered = 0;
  for (size_t i = 0; i < entries.size(); ++i) {
    const Entry& e = entries[i];
    if (e.begin < covered) {
      const Entry& prev = entries[i - 1];
      return Status::corruption("{}: tensor '{}' data_offsets [{}, {}] overlap tensor '{}' [{}, {}]", path,
                                text_excerpt(e.view.name, kMaxShownChars), e.begin, e.end,
                                text_excerpt(prev.view.name, kMaxShownChars), prev.begin, prev.end);
    }
    if (e.begin > covered) {
      return Status::corruption("{}: bytes [{}, {}) of the data region belong to no tensor (before tensor '{}')",
                                path, covered, e.begin, text_excerpt(e.view.name, kMaxShownChars));
    }
    covered = e.end;
  }
  if (covered != data_size) {
    return Status::corruption("{}: the data region is {} bytes but the tensors cover only {}: {} stray bytes at the end",
                              path, data_size, covered, data_size - covered);
  }

  std::vector<TensorView> views;
  views.reserve(entries.size());
  for (Entry& e : entries) {
    e.view.data = file.data() + data_offset + e.begin;
    views.push_back(std::move(e.view));
  }
  return SafetensorsFile(std::move(file), std::move(views), std::move(metadata));
}

const TensorView* SafetensorsFile::find(std::string_view name) const {
  for (const TensorView& t : tensors_) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

Result<const TensorView*> SafetensorsFile::get(std::string_view name) const {
  const TensorView* t = find(name);
  if (t == nullptr) return Status::not_found("{}: no tensor '{}'", path(), name);
  return t;
}

Status convert_to_f32(const TensorView& tensor, std::span<float> out) {
  const size_t n = static_cast<size_t>(tensor.element_count());
  if (out.size() != n) {
    return Status::invalid("tensor '{}': output holds {} floats, tensor has {}", tensor.name, out.size(), n);
  }
  const uint8_t* p = tensor.data;
  switch (tensor.dtype) {
    case DType::kF32:
      if (n > 0) std::memcpy(out.data(), p, n * sizeof(float));
      return Status();
    case DType::kBF16:
      for (size_t i = 0; i < n; ++i) out[i] = bf16_to_f32(load<uint16_t>(p + 2 * i));
      return Status();
    case DType::kF16:
      for (size_t i = 0; i < n; ++i) out[i] = f16_to_f32(load<uint16_t>(p + 2 * i));
      return Status();
    case DType::kF64:
      for (size_t i = 0; i < n; ++i) out[i] = static_cast<float>(load<double>(p + 8 * i));
      return Status();
    default:
      return Status::invalid("tensor '{}' has dtype {}, not a float type", tensor.name, dtype_name(tensor.dtype));
  }
}

Result<std::vector<float>> SafetensorsFile::read_f32(std::string_view name) const {
  SC_ASSIGN_OR_RETURN(const TensorView* t, get(name));
  std::vector<float> out(static_cast<size_t>(t->element_count()));
  SC_RETURN_IF_ERROR(convert_to_f32(*t, out).with_context(path()));
  return out;
}

Result<std::vector<float>> SafetensorsFile::read_f32(std::string_view name,
                                                     const std::vector<int64_t>& expected_shape) const {
  SC_ASSIGN_OR_RETURN(const TensorView* t, get(name));
  if (!std::equal(t->shape.begin(), t->shape.end(), expected_shape.begin(), expected_shape.end())) {
    return Status::invalid("{}: tensor '{}' has shape {}, expected {}", path(), name, shape_text(t->shape),
                           shape_text(expected_shape));
  }
  return read_f32(name);
}

Result<std::vector<uint32_t>> SafetensorsFile::read_u32(std::string_view name) const {
  SC_ASSIGN_OR_RETURN(const TensorView* t, get(name));
  const size_t n = static_cast<size_t>(t->element_count());
  std::vector<uint32_t> out(n);
  const uint8_t* p = t->data;
  auto fits = [&](auto value, size_t i) -> Status {
    if (value < 0 || static_cast<uint64_t>(value) > std::numeric_limits<uint32_t>::max()) {
      return Status::invalid("{}: tensor '{}' element {} is {}, outside uint32", path(), name, i, value);
    }
    out[i] = static_cast<uint32_t>(value);
    return Status();
  };
  for (size_t i = 0; i < n; ++i) {
    switch (t->dtype) {
      case DType::kU8: out[i] = p[i]; break;
      case DType::kU16: out[i] = load<uint16_t>(p + 2 * i); break;
      case DType::kU32: out[i] = load<uint32_t>(p + 4 * i); break;
      case DType::kI8: SC_RETURN_IF_ERROR(fits(static_cast<int64_t>(load<int8_t>(p + i)), i)); break;
      case DType::kI16: SC_RETURN_IF_ERROR(fits(static_cast<int64_t>(load<int16_t>(p + 2 * i)), i)); break;
      case DType::kI32: SC_RETURN_IF_ERROR(fits(static_cast<int64_t>(load<int32_t>(p + 4 * i)), i)); break;
      case DType::kI64: SC_RETURN_IF_ERROR(fits(load<int64_t>(p + 8 * i), i)); break;
      case DType::kU64: {
        uint64_t v = load<uint64_t>(p + 8 * i);
        if (v > std::numeric_limits<uint32_t>::max()) {
          return Status::invalid("{}: tensor '{}' element {} is {}, outside uint32", path(), name, i, v);
        }
        out[i] = static_cast<uint32_t>(v);
        break;
      }
      default:
        return Status::invalid("{}: tensor '{}' has dtype {}, not an integer type", path(), name,
                               dtype_name(t->dtype));
    }
  }
  return out;
}

Result<std::string> SafetensorsFile::metadata_value(std::string_view key) const {
  auto it = metadata_.find(std::string(key));
  if (it == metadata_.end()) return Status::not_found("{}: no __metadata__ entry '{}'", path(), key);
  return it->second;
}

Result<double> SafetensorsFile::metadata_double(std::string_view key) const {
  SC_ASSIGN_OR_RETURN(std::string text, metadata_value(key));
  double value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) {
    return Status::invalid("{}: __metadata__ entry '{}' is '{}', not a number", path(), key,
                           text_excerpt(text, kMaxShownChars));
  }
  return value;
}

}  // namespace sc
