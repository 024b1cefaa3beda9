#pragma once
// safetensors reader and writer (torch-free).
//
// File layout: 8-byte little-endian header length N, N bytes of UTF-8 JSON header
// {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ..., "__metadata__": {..}},
// then the data section; offsets are relative to the start of the data section (8 + N).
//
// Failure contract: every loader throws genprm::ValueError whose message starts with the file path
// and names the tensor and the rule broken (truncated file, header length beyond file, invalid
// JSON, unknown dtype, shape x dtype != byte range, overlapping or out-of-range offsets, duplicate
// names, missing tensor, missing shard). Nothing is read lazily: open() validates everything.
// Gaps between tensors and trailing bytes after the last tensor are tolerated (harmless); the
// writer never produces them.
#include <sys/stat.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "genprm/util/error.hpp"
#include "genprm/io/json_strict.hpp"
#include "genprm/util/json.hpp"
#include "genprm/util/mmap.hpp"

namespace genprm {

enum class DType { F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL };

inline size_t dtype_size(DType d) {
  switch (d) {
    case DType::F64: case DType::I64: return 8;
    case DType::F32: case DType::I32: return 4;
    case DType::F16: case DType::BF16: case DType::I16: return 2;
    case DType::I8: case DType::U8: case DType::BOOL: return 1;
  }
  return 0;
}

/// The safetensors spelling: "F32", "BF16", "BOOL", ...
inline const char* dtype_name(DType d) {
  switch (d) {
    case DType::F64: return "F64";
    case DType::F32: return "F32";
    case DType::F16: return "F16";
    case DType::BF16: return "BF16";
    case DType::I64: return "I64";
    case DType::I32: return "I32";
    case DType::I16: return "I16";
    case DType::I8: return "I8";
    case DType::U8: return "U8";
    case DType::BOOL: return "BOOL";
  }
  return "?";
}

/// Parses a safetensors dtype name; `what` (file and tensor) prefixes the error for unknown names.
inline DType parse_dtype(std::string_view s, const std::string& what) {
  static const std::pair<const char*, DType> table[] = {
      {"F64", DType::F64}, {"F32", DType::F32}, {"F16", DType::F16}, {"BF16", DType::BF16},
      {"I64", DType::I64}, {"I32", DType::I32}, {"I16", DType::I16}, {"I8", DType::I8},
      {"U8", DType::U8},   {"BOOL", DType::BOOL}};
  for (const auto& [name, d] : table)
    if (s == name) return d;
  throw ValueError(fmt::format(
      "{}: unknown or unsupported dtype '{}' (supported: F64 F32 F16 BF16 I64 I32 I16 I8 U8 BOOL)",
      what, s));
}

struct TensorInfo {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  const uint8_t* data;  // into the mapping; valid while the owning file (or keep_alive()) lives
  size_t nbytes;
  int64_t numel() const {
    int64_t n = 1;
    for (int64_t s : shape) n *= s;
    return n;
  }
};

/// Result of parsing a safetensors image held in memory (tensors point into `data`).
struct SafetensorsHeader {
  std::vector<TensorInfo> tensors;  // sorted by data offset (file order)
  std::map<std::string, std::string> metadata;
  size_t data_start = 0;  // 8 + header length
};

namespace detail {

// Largest header accepted (the reference implementation's limit is 100 MB too).
constexpr uint64_t kMaxSafetensorsHeader = 100ull * 1000 * 1000;

inline bool checked_mul(uint64_t a, uint64_t b, uint64_t* out) {
  if (a != 0 && b > std::numeric_limits<uint64_t>::max() / a) return false;
  *out = a * b;
  return true;
}

inline uint64_t json_u64(const Json& v, const std::string& what, const char* field) {
  GENPRM_CHECK_ARG(v.is_number_unsigned() || (v.is_number_integer() && v.get<int64_t>() >= 0),
                   "{}: '{}' must hold non-negative integers, got {}", what, field, v.dump());
  return v.get<uint64_t>();
}

}  // namespace detail

/// Parses and validates a complete safetensors image [data, data + size). `path` names it in errors.
inline SafetensorsHeader parse_safetensors(const uint8_t* data, size_t size, const std::string& path) {
  SafetensorsHeader out;
  GENPRM_CHECK_ARG(size >= 8, "{}: truncated file: {} bytes, shorter than the 8-byte header length",
                   path, size);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | data[i];
  GENPRM_CHECK_ARG(n <= size - 8, "{}: header length {} goes beyond the end of the file ({} bytes)",
                   path, n, size);
  GENPRM_CHECK_ARG(n <= detail::kMaxSafetensorsHeader, "{}: header length {} exceeds the limit of {} bytes",
                   path, n, detail::kMaxSafetensorsHeader);
  GENPRM_CHECK_ARG(n >= 2 && data[8] == '{', "{}: invalid JSON header: it must be a JSON object", path);
  const char* hb = reinterpret_cast<const char*>(data + 8);
  Json header = parse_json_strict(hb, hb + n, path, "JSON header");
  GENPRM_CHECK_ARG(header.is_object(), "{}: invalid JSON header: it must be a JSON object", path);

  out.data_start = static_cast<size_t>(8 + n);
  const uint64_t data_size = size - out.data_start;
  const uint8_t* base = data + out.data_start;

  struct Span { uint64_t begin, end; size_t index; };
  std::vector<Span> spans;
  std::vector<TensorInfo> tensors;
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    const Json& v = it.value();
    if (name == "__metadata__") {
      GENPRM_CHECK_ARG(v.is_object(), "{}: '__metadata__' must be an object of strings", path);
      for (auto m = v.begin(); m != v.end(); ++m) {
        GENPRM_CHECK_ARG(m.value().is_string(), "{}: '__metadata__' value of '{}' must be a string, got {}",
                         path, m.key(), m.value().dump());
        out.metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    const std::string what = fmt::format("{}: tensor '{}'", path, name);
    GENPRM_CHECK_ARG(v.is_object(), "{}: entry must be an object with dtype, shape, data_offsets", what);
    auto dt = v.find("dtype");
    auto sh = v.find("shape");
    auto off = v.find("data_offsets");
    GENPRM_CHECK_ARG(dt != v.end() && dt->is_string(), "{}: missing or non-string 'dtype'", what);
    GENPRM_CHECK_ARG(sh != v.end() && sh->is_array(), "{}: missing or non-array 'shape'", what);
    GENPRM_CHECK_ARG(off != v.end() && off->is_array() && off->size() == 2,
                     "{}: 'data_offsets' must be [begin, end]", what);
    TensorInfo t;
    t.name = name;
    t.dtype = parse_dtype(dt->get_ref<const std::string&>(), what);
    uint64_t numel = 1;
    for (const Json& d : *sh) {
      uint64_t dim = detail::json_u64(d, what, "shape");
      GENPRM_CHECK_ARG(dim <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) &&
                           detail::checked_mul(numel, dim, &numel),
                       "{}: shape {} overflows", what, sh->dump());
      t.shape.push_back(static_cast<int64_t>(dim));
    }
    uint64_t begin = detail::json_u64((*off)[0], what, "data_offsets");
    uint64_t end = detail::json_u64((*off)[1], what, "data_offsets");
    GENPRM_CHECK_ARG(begin <= end, "{}: data_offsets [{}, {}] end before they begin", what, begin, end);
    GENPRM_CHECK_ARG(end <= data_size,
                     "{}: data_offsets [{}, {}] out of range: the data section has {} bytes "
                     "(truncated file?)", what, begin, end, data_size);
    uint64_t nbytes = 0;
    GENPRM_CHECK_ARG(detail::checked_mul(numel, dtype_size(t.dtype), &nbytes) && nbytes == end - begin,
                     "{}: shape {} x dtype {} needs {} bytes but data_offsets [{}, {}] hold {} bytes",
                     what, sh->dump(), dtype_name(t.dtype), numel * dtype_size(t.dtype), begin, end,
                     end - begin);
    t.data = base + begin;
    t.nbytes = static_cast<size_t>(nbytes);
    spans.push_back({begin, end, tensors.size()});
    tensors.push_back(std::move(t));
  }
  std::sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  // Empty tensors occupy no bytes and may sit anywhere; every other tensor must start at or
  // after the end of the previous non-empty one.
  const Span* prev = nullptr;
  for (const Span& c : spans) {
    if (c.begin == c.end) continue;
    GENPRM_CHECK_ARG(prev == nullptr || c.begin >= prev->end,
                     "{}: tensors '{}' [{}, {}] and '{}' [{}, {}] overlap", path,
                     tensors[prev ? prev->index : 0].name, prev ? prev->begin : 0, prev ? prev->end : 0,
                     tensors[c.index].name, c.begin, c.end);
    prev = &c;
  }
  out.tensors.reserve(tensors.size());
  for (const Span& s : spans) out.tensors.push_back(std::move(tensors[s.index]));
  return out;
}

/// One memory-mapped safetensors file; cheap to copy (copies share the mapping).
class SafetensorsFile {
 public:
  SafetensorsFile() = default;

  /// Maps and validates the whole file. Throws ValueError naming the file (and tensor).
  static SafetensorsFile open(const std::string& path) {
    auto impl = std::make_shared<Impl>();
    impl->file = MappedFile(path);
    impl->path = path;
    SafetensorsHeader h = parse_safetensors(impl->file.data(), impl->file.size(), path);
    impl->tensors = std::move(h.tensors);
    impl->metadata = std::move(h.metadata);
    for (size_t i = 0; i < impl->tensors.size(); ++i) impl->index.emplace(impl->tensors[i].name, i);
    SafetensorsFile f;
    f.impl_ = std::move(impl);
    return f;
  }

  /// Tensors in file order (by data offset).
  const std::vector<TensorInfo>& tensors() const { return impl().tensors; }
  bool contains(const std::string& name) const { return impl().index.count(name) != 0; }
  /// Throws ValueError naming the file and tensor when absent.
  const TensorInfo& at(const std::string& name) const {
    auto it = impl().index.find(name);
    GENPRM_CHECK_ARG(it != impl().index.end(), "{}: missing tensor '{}'", impl().path, name);
    return impl().tensors[it->second];
  }
  const std::map<std::string, std::string>& metadata() const { return impl().metadata; }
  const std::string& path() const { return impl().path; }
  /// Keeps the mapping alive (hand it to zero-copy tensors).
  std::shared_ptr<const void> keep_alive() const { return impl_; }

 private:
  struct Impl {
    MappedFile file;
    std::string path;
    std::vector<TensorInfo> tensors;
    std::unordered_map<std::string, size_t> index;
    std::map<std::string, std::string> metadata;
  };
  const Impl& impl() const {
    GENPRM_CHECK(impl_ != nullptr, "SafetensorsFile: used before open()");
    return *impl_;
  }
  std::shared_ptr<const Impl> impl_;
};

namespace detail {
inline bool is_directory(const std::string& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}
inline bool is_file(const std::string& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}
inline bool ends_with(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}
inline std::string dir_of(const std::string& p) {
  auto pos = p.find_last_of('/');
  return pos == std::string::npos ? std::string(".") : p.substr(0, pos == 0 ? 1 : pos);
}
inline std::string join_path(const std::string& dir, const std::string& name) {
  if (dir.empty() || dir.back() == '/') return dir + name;
  return dir + "/" + name;
}
}  // namespace detail

/// A model's weights: one .safetensors file, or shards listed by model.safetensors.index.json.
class SafetensorsCheckpoint {
 public:
  SafetensorsCheckpoint() = default;

  /// `path`: a .safetensors file, an index .json, or a directory holding
  /// model.safetensors.index.json (preferred) or model.safetensors. Every shard is opened and
  /// validated; every tensor named in the index must exist in its shard.
  static SafetensorsCheckpoint open(const std::string& path) {
    if (detail::is_directory(path)) {
      std::string index = detail::join_path(path, "model.safetensors.index.json");
      std::string single = detail::join_path(path, "model.safetensors");
      if (detail::is_file(index)) return open_index(index);
      GENPRM_CHECK_ARG(detail::is_file(single),
                       "{}: no model.safetensors.index.json or model.safetensors in this directory", path);
      return open_single(single);
    }
    if (detail::ends_with(path, ".json")) return open_index(path);
    return open_single(path);
  }

  /// Tensor names: file order for a single file, sorted for a sharded checkpoint.
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    out.reserve(entries_.size());
    for (const auto& e : order_) out.push_back(e);
    return out;
  }
  bool contains(const std::string& name) const { return entries_.count(name) != 0; }
  /// Throws ValueError naming the checkpoint and tensor when absent.
  const TensorInfo& at(const std::string& name) const { return *entry(name).info; }
  /// Keeps the mapping holding `name` alive.
  std::shared_ptr<const void> keep_alive(const std::string& name) const {
    return files_[entry(name).file].keep_alive();
  }
  /// The file holding `name`.
  const SafetensorsFile& file_of(const std::string& name) const { return files_[entry(name).file]; }
  const std::vector<SafetensorsFile>& files() const { return files_; }
  /// What open() was given.
  const std::string& path() const { return path_; }
  /// The index's "metadata" (e.g. total_size as text) or the single file's __metadata__.
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    const TensorInfo* info;
    size_t file;
  };
  const Entry& entry(const std::string& name) const {
    auto it = entries_.find(name);
    GENPRM_CHECK_ARG(it != entries_.end(), "{}: missing tensor '{}'", path_, name);
    return it->second;
  }

  static SafetensorsCheckpoint open_single(const std::string& file) {
    SafetensorsCheckpoint c;
    c.path_ = file;
    c.files_.push_back(SafetensorsFile::open(file));
    c.metadata_ = c.files_[0].metadata();
    for (const TensorInfo& t : c.files_[0].tensors()) {
      c.entries_.emplace(t.name, Entry{&t, 0});
      c.order_.push_back(t.name);
    }
    return c;
  }

  static SafetensorsCheckpoint open_index(const std::string& index_path) {
    SafetensorsCheckpoint c;
    c.path_ = index_path;
    std::string text = read_text_file(index_path);
    Json j = parse_json_strict(text, index_path);
    GENPRM_CHECK_ARG(j.is_object(), "{}: index must be a JSON object", index_path);
    auto wm = j.find("weight_map");
    GENPRM_CHECK_ARG(wm != j.end() && wm->is_object(), "{}: missing object 'weight_map'", index_path);
    auto md = j.find("metadata");
    if (md != j.end() && md->is_object())
      for (auto m = md->begin(); m != md->end(); ++m)
        c.metadata_[m.key()] = m.value().is_string() ? m.value().get<std::string>() : m.value().dump();
    const std::string dir = detail::dir_of(index_path);
    std::map<std::string, size_t> shard_index;
    for (auto it = wm->begin(); it != wm->end(); ++it) {
      GENPRM_CHECK_ARG(it.value().is_string(), "{}: weight_map entry for tensor '{}' must be a file name",
                       index_path, it.key());
      const std::string& shard = it.value().get_ref<const std::string&>();
      GENPRM_CHECK_ARG(!shard.empty() && shard[0] != '/' && shard.find("..") == std::string::npos,
                       "{}: tensor '{}' names shard '{}': must be a file name relative to the index",
                       index_path, it.key(), shard);
      auto s = shard_index.find(shard);
      if (s == shard_index.end()) {
        std::string shard_path = detail::join_path(dir, shard);
        GENPRM_CHECK_ARG(detail::is_file(shard_path),
                         "{}: shard '{}' (holding tensor '{}') is named in the index but absent ({})",
                         index_path, shard, it.key(), shard_path);
        s = shard_index.emplace(shard, c.files_.size()).first;
        c.files_.push_back(SafetensorsFile::open(shard_path));
      }
      const SafetensorsFile& f = c.files_[s->second];
      GENPRM_CHECK_ARG(f.contains(it.key()), "{}: missing tensor '{}': the index puts it in shard '{}'",
                       index_path, it.key(), f.path());
      c.entries_.emplace(it.key(), Entry{&f.at(it.key()), s->second});
      c.order_.push_back(it.key());
    }
    return c;
  }

  std::string path_;
  std::vector<SafetensorsFile> files_;  // TensorInfo pointers stay valid: Impl is heap-held
  std::unordered_map<std::string, Entry> entries_;
  std::vector<std::string> order_;
  std::map<std::string, std::string> metadata_;
};

// ---- writer ----------------------------------------------------------------------------------

/// A tensor in host memory, for the writer. bytes.size() must equal numel x dtype_size.
struct HostTensor {
  DType dtype;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
};

namespace detail {

inline void check_host_tensor(const std::string& path, const std::string& name, const HostTensor& t) {
  GENPRM_CHECK_ARG(!name.empty() && name != "__metadata__", "{}: invalid tensor name '{}'", path, name);
  uint64_t numel = 1;
  for (int64_t d : t.shape) {
    GENPRM_CHECK_ARG(d >= 0 && checked_mul(numel, static_cast<uint64_t>(d), &numel),
                     "{}: tensor '{}': invalid shape {}", path, name, t.shape);
  }
  GENPRM_CHECK_ARG(numel * dtype_size(t.dtype) == t.bytes.size(),
                   "{}: tensor '{}': shape {} x dtype {} needs {} bytes, got {}", path, name, t.shape,
                   dtype_name(t.dtype), numel * dtype_size(t.dtype), t.bytes.size());
}

/// Data layout order: stable by dtype size, largest first, so every tensor stays aligned for
/// its dtype (the data section starts 8-aligned).
inline std::vector<size_t> layout_order(const std::vector<std::pair<std::string, HostTensor>>& ts) {
  std::vector<size_t> order(ts.size());
  for (size_t i = 0; i < ts.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return dtype_size(ts[a].second.dtype) > dtype_size(ts[b].second.dtype);
  });
  return order;
}

inline void write_file_atomic(const std::string& path, const std::string& header,
                              const std::vector<std::pair<std::string, HostTensor>>& ts,
                              const std::vector<size_t>& order) {
  const std::string tmp = path + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  GENPRM_CHECK_ARG(f != nullptr, "{}: cannot open for writing: {}", tmp, std::strerror(errno));
  bool ok = true;
  uint8_t len[8];
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(n >> (8 * i));
  ok = ok && std::fwrite(len, 1, 8, f) == 8;
  ok = ok && std::fwrite(header.data(), 1, header.size(), f) == header.size();
  for (size_t i : order) {
    const auto& b = ts[i].second.bytes;
    if (!b.empty()) ok = ok && std::fwrite(b.data(), 1, b.size(), f) == b.size();
  }
  ok = (std::fclose(f) == 0) && ok;
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    int e = errno;
    std::remove(tmp.c_str());
    throw ValueError(fmt::format("{}: write failed: {}", path, std::strerror(e)));
  }
}

}  // namespace detail

/// Writes one safetensors file (atomically: a temporary file renamed into place). Tensors are
/// laid out largest dtype first so each is aligned for its dtype; the header is padded with
/// spaces to a multiple of 8. Throws ValueError for bad names/shapes or I/O errors.
inline void write_safetensors(const std::string& path,
                              const std::vector<std::pair<std::string, HostTensor>>& tensors,
                              const std::map<std::string, std::string>& metadata = {}) {
  std::set<std::string> seen;
  for (const auto& [name, t] : tensors) {
    detail::check_host_tensor(path, name, t);
    GENPRM_CHECK_ARG(seen.insert(name).second, "{}: duplicate tensor name '{}'", path, name);
  }
  std::vector<size_t> order = detail::layout_order(tensors);
  std::string header = "{";
  bool first = true;
  if (!metadata.empty()) {
    header += "\"__metadata__\":" + Json(metadata).dump();
    first = false;
  }
  uint64_t offset = 0;
  for (size_t i : order) {
    const auto& [name, t] = tensors[i];
    if (!first) header += ",";
    first = false;
    header += fmt::format("{}:{{\"dtype\":\"{}\",\"shape\":{},\"data_offsets\":[{},{}]}}",
                          Json(name).dump(), dtype_name(t.dtype), Json(t.shape).dump(), offset,
                          offset + t.bytes.size());
    offset += t.bytes.size();
  }
  header += "}";
  while (header.size() % 8 != 0) header += ' ';
  detail::write_file_atomic(path, header, tensors, order);
}

/// Writes a sharded checkpoint into directory `dir` (which must exist): shards
/// model-0000i-of-0000n.safetensors of at most `max_shard_bytes` of tensor data each (a larger
/// tensor gets a shard of its own), in the given order, plus model.safetensors.index.json.
/// Returns the shard file names.
inline std::vector<std::string> write_sharded_safetensors(
    const std::string& dir, const std::vector<std::pair<std::string, HostTensor>>& tensors,
    size_t max_shard_bytes, const std::map<std::string, std::string>& metadata = {}) {
  GENPRM_CHECK_ARG(detail::is_directory(dir), "{}: not a directory", dir);
  GENPRM_CHECK_ARG(max_shard_bytes > 0, "{}: max_shard_bytes must be positive", dir);
  std::vector<std::vector<std::pair<std::string, HostTensor>>> shards(1);
  size_t used = 0;
  uint64_t total = 0;
  std::set<std::string> seen;
  for (const auto& nt : tensors) {
    detail::check_host_tensor(dir, nt.first, nt.second);
    GENPRM_CHECK_ARG(seen.insert(nt.first).second, "{}: duplicate tensor name '{}'", dir, nt.first);
    size_t b = nt.second.bytes.size();
    if (!shards.back().empty() && used + b > max_shard_bytes) {
      shards.emplace_back();
      used = 0;
    }
    shards.back().push_back(nt);
    used += b;
    total += b;
  }
  const size_t n = shards.size();
  std::vector<std::string> names;
  Json weight_map = Json::object();
  for (size_t i = 0; i < n; ++i) {
    names.push_back(fmt::format("model-{:05d}-of-{:05d}.safetensors", i + 1, n));
    write_safetensors(detail::join_path(dir, names.back()), shards[i], metadata);
    for (const auto& nt : shards[i]) weight_map[nt.first] = names.back();
  }
  Json index = {{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}};
  const std::string index_path = detail::join_path(dir, "model.safetensors.index.json");
  const std::string tmp = index_path + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  GENPRM_CHECK_ARG(f != nullptr, "{}: cannot open for writing: {}", tmp, std::strerror(errno));
  std::string text = index.dump(2) + "\n";
  bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size();
  ok = (std::fclose(f) == 0) && ok;
  GENPRM_CHECK_ARG(ok && std::rename(tmp.c_str(), index_path.c_str()) == 0, "{}: write failed", index_path);
  return names;
}

}  // namespace genprm
