// io: safetensors reading/writing as numpy arrays, ModelConfig.
#include <cstring>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "common.hpp"
#include "genprm/io/model_config.hpp"
#include "genprm/io/safetensors.hpp"

namespace genprm::bindings {
namespace {

const char* numpy_format(DType d) {
  switch (d) {
    case DType::F64: return "f8";
    case DType::F32: return "f4";
    case DType::F16: return "f2";
    case DType::BF16: return "f4";  // widened to float32
    case DType::I64: return "i8";
    case DType::I32: return "i4";
    case DType::I16: return "i2";
    case DType::I8: return "i1";
    case DType::U8: return "u1";
    case DType::BOOL: return "?";
  }
  return "u1";
}

// A numpy array holding a copy of the tensor (bf16 widened to float32 exactly).
py::array to_numpy(const TensorInfo& t) {
  std::vector<py::ssize_t> shape(t.shape.begin(), t.shape.end());
  py::array out(py::dtype(numpy_format(t.dtype)), shape);
  auto* dst = static_cast<uint8_t*>(out.mutable_data());
  if (t.dtype == DType::BF16) {
    const size_t n = t.nbytes / 2;
    auto* f = reinterpret_cast<uint32_t*>(dst);
    for (size_t i = 0; i < n; ++i) {
      uint16_t h;
      std::memcpy(&h, t.data + 2 * i, 2);
      f[i] = static_cast<uint32_t>(h) << 16;
    }
  } else if (t.nbytes) {
    std::memcpy(dst, t.data, t.nbytes);
  }
  return out;
}

// (name, dtype name, shape, buffer) tuples -> HostTensors; the buffer's bytes are copied as is.
std::vector<std::pair<std::string, HostTensor>> to_host(const std::string& path, const py::list& items) {
  std::vector<std::pair<std::string, HostTensor>> out;
  out.reserve(items.size());
  for (const py::handle& item : items) {
    auto tup = item.cast<py::tuple>();
    GENPRM_CHECK_ARG(tup.size() == 4, "{}: expected (name, dtype, shape, buffer) tuples", path);
    auto name = tup[0].cast<std::string>();
    HostTensor h;
    h.dtype = parse_dtype(tup[1].cast<std::string>(), fmt::format("{}: tensor '{}'", path, name));
    h.shape = tup[2].cast<std::vector<int64_t>>();
    py::buffer_info buf = tup[3].cast<py::buffer>().request();
    const size_t nbytes = static_cast<size_t>(buf.size) * static_cast<size_t>(buf.itemsize);
    GENPRM_CHECK_ARG(PyBuffer_IsContiguous(buf.view(), 'C') != 0,
                     "{}: tensor '{}': buffer must be C-contiguous", path, name);
    h.bytes.resize(nbytes);
    if (nbytes) std::memcpy(h.bytes.data(), buf.ptr, nbytes);
    out.emplace_back(std::move(name), std::move(h));
  }
  return out;
}

}  // namespace

void bind_io(py::module_& m) {
  m.def(
      "load_safetensors",
      [](const std::string& path) {
        SafetensorsCheckpoint ckpt = SafetensorsCheckpoint::open(path);
        py::dict out;
        for (const std::string& n : ckpt.names()) out[py::str(n)] = to_numpy(ckpt.at(n));
        return out;
      },
      py::arg("path"),
      "Reads a .safetensors file, an index .json or a model directory into {name: numpy array} "
      "(copies; BF16 becomes float32). Raises ValueError naming the file for malformed input.");
  m.def(
      "safetensors_info",
      [](const std::string& path) {
        SafetensorsCheckpoint ckpt = SafetensorsCheckpoint::open(path);
        py::list tensors;
        for (const std::string& n : ckpt.names()) {
          const TensorInfo& t = ckpt.at(n);
          tensors.append(py::make_tuple(n, dtype_name(t.dtype), t.shape));
        }
        return py::make_tuple(tensors, ckpt.metadata());
      },
      py::arg("path"), "([(name, dtype name, shape)], metadata) without reading tensor data.");
  m.def(
      "write_safetensors",
      [](const std::string& path, const py::list& items, const std::map<std::string, std::string>& metadata) {
        write_safetensors(path, to_host(path, items), metadata);
      },
      py::arg("path"), py::arg("tensors"), py::arg("metadata") = std::map<std::string, std::string>{});
  m.def(
      "write_sharded_safetensors",
      [](const std::string& dir, const py::list& items, size_t max_shard_bytes,
         const std::map<std::string, std::string>& metadata) {
        return write_sharded_safetensors(dir, to_host(dir, items), max_shard_bytes, metadata);
      },
      py::arg("dir"), py::arg("tensors"), py::arg("max_shard_bytes"),
      py::arg("metadata") = std::map<std::string, std::string>{});

  py::class_<ModelConfig>(m, "ModelConfig", "A validated Hugging Face config.json (qwen2 / llama).")
      .def(py::init<>())
      .def_static("from_file", &ModelConfig::from_file, py::arg("path"))
      .def_static(
          "from_json_string",
          [](const std::string& text, const std::string& what) {
            return ModelConfig::from_json_text(text, what);
          },
          py::arg("text"), py::arg("what") = "<config>")
      .def_static(
          "from_dict",
          [](const py::dict& d, const std::string& what) {
            std::string text = py::module_::import("json").attr("dumps")(d).cast<std::string>();
            return ModelConfig::from_json_text(text, what);
          },
          py::arg("d"), py::arg("what") = "<config>")
      .def("to_json_string", [](const ModelConfig& c) { return c.to_json().dump(); })
      .def_readwrite("model_type", &ModelConfig::model_type)
      .def_readwrite("vocab_size", &ModelConfig::vocab_size)
      .def_readwrite("hidden_size", &ModelConfig::hidden_size)
      .def_readwrite("intermediate_size", &ModelConfig::intermediate_size)
      .def_readwrite("num_hidden_layers", &ModelConfig::num_hidden_layers)
      .def_readwrite("num_attention_heads", &ModelConfig::num_attention_heads)
      .def_readwrite("num_key_value_heads", &ModelConfig::num_key_value_heads)
      .def_readwrite("head_dim", &ModelConfig::head_dim)
      .def_readwrite("max_position_embeddings", &ModelConfig::max_position_embeddings)
      .def_readwrite("rms_norm_eps", &ModelConfig::rms_norm_eps)
      .def_readwrite("rope_theta", &ModelConfig::rope_theta)
      .def_readwrite("tie_word_embeddings", &ModelConfig::tie_word_embeddings)
      .def_readwrite("attention_bias", &ModelConfig::attention_bias)
      .def_readwrite("torch_dtype", &ModelConfig::torch_dtype)
      .def_readwrite("bos_token_id", &ModelConfig::bos_token_id)
      .def_readwrite("eos_token_ids", &ModelConfig::eos_token_ids)
      .def("to_dict",
           [](const ModelConfig& c) { return py::module_::import("json").attr("loads")(c.to_json().dump()); })
      .def("__repr__", [](const ModelConfig& c) {
        return fmt::format("ModelConfig({}, vocab={}, hidden={}, layers={}, heads={}/{}, head_dim={})",
                           c.model_type, c.vocab_size, c.hidden_size, c.num_hidden_layers,
                           c.num_attention_heads, c.num_key_value_heads, c.head_dim);
      });
}

}  // namespace genprm::bindings
