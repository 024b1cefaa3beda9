// genprm._core.Tokenizer / StreamDecoder: the C++ tokenizer (include/genprm/tokenizer/).
// The Pythonic wrapper with the jinja2 fallback for unknown chat templates is
// python/genprm/tokenizer.py.
#include "common.hpp"
#include "genprm/tokenizer/tokenizer.hpp"

namespace genprm::bindings {

namespace {

std::vector<ChatMessage> to_messages(const py::iterable& messages) {
  std::vector<ChatMessage> out;
  for (const py::handle& m : messages) {
    if (py::isinstance<py::dict>(m)) {
      const auto d = py::reinterpret_borrow<py::dict>(m);
      GENPRM_CHECK_ARG(d.contains("role") && d.contains("content"),
                       "apply_chat_template: each message needs 'role' and 'content'");
      const py::object content = d["content"];
      GENPRM_CHECK_ARG(py::isinstance<py::str>(content),
                       "apply_chat_template: message content must be a string (got {})",
                       std::string(py::str(py::type::of(content).attr("__name__"))));
      out.push_back({py::cast<std::string>(d["role"]), py::cast<std::string>(content)});
    } else {
      out.push_back(py::cast<ChatMessage>(m));
    }
  }
  return out;
}

}  // namespace

void bind_tokenizer(py::module_& m) {
  py::class_<ChatMessage>(m, "ChatMessage")
      .def(py::init<>())
      .def(py::init([](std::string role, std::string content) { return ChatMessage{std::move(role), std::move(content)}; }),
           py::arg("role"), py::arg("content"))
      .def_readwrite("role", &ChatMessage::role)
      .def_readwrite("content", &ChatMessage::content)
      .def("__repr__", [](const ChatMessage& c) {
        return "ChatMessage(role=" + std::string(py::repr(py::str(c.role))) + ", content=" +
               std::string(py::repr(py::str(c.content))) + ")";
      });

  py::class_<Tokenizer>(m, "Tokenizer")
      .def_static("from_file", &Tokenizer::from_file, py::arg("path"), py::call_guard<py::gil_scoped_release>(),
                  "Loads a Hugging Face tokenizer.json (byte-level BPE).")
      .def_static("from_pretrained", &Tokenizer::from_pretrained, py::arg("model_dir"),
                  py::call_guard<py::gil_scoped_release>(),
                  "Loads model_dir/tokenizer.json and model_dir/tokenizer_config.json.")
      .def("encode", &Tokenizer::encode, py::arg("text"), py::arg("add_special_tokens") = false,
           py::call_guard<py::gil_scoped_release>())
      .def("encode_bytes", &Tokenizer::encode, py::arg("data"), py::arg("add_special_tokens") = false,
           py::call_guard<py::gil_scoped_release>(),
           "Encodes UTF-8 bytes; invalid sequences become U+FFFD (one per maximal ill-formed subpart).")
      .def(
          "encode_batch",
          [](const Tokenizer& t, const std::vector<std::string>& texts, bool add_special_tokens) {
            std::vector<std::vector<int32_t>> out;
            for (const auto& text : texts) out.push_back(t.encode(text, add_special_tokens));
            return out;
          },
          py::arg("texts"), py::arg("add_special_tokens") = false, py::call_guard<py::gil_scoped_release>())
      .def("decode", &Tokenizer::decode, py::arg("ids"), py::arg("skip_special_tokens") = false)
      .def("token_to_id", &Tokenizer::token_to_id, py::arg("token"))
      .def("id_to_token", &Tokenizer::try_id_to_token, py::arg("id"), "None when the id is not in the vocabulary.")
      .def("token_bytes", [](const Tokenizer& t, int32_t id) { return py::bytes(std::string(t.token_bytes(id))); },
           py::arg("id"))
      .def("is_special", &Tokenizer::is_special, py::arg("id"))
      .def("is_added", &Tokenizer::is_added, py::arg("id"))
      .def_property_readonly("vocab_size", &Tokenizer::vocab_size)
      .def_property_readonly("eos_token_id", &Tokenizer::eos_token_id)
      .def_property_readonly("bos_token_id", &Tokenizer::bos_token_id)
      .def_property_readonly("eos_token", [](const Tokenizer& t) -> py::object {
        return t.eos_token().empty() ? py::object(py::none()) : py::object(py::str(t.eos_token()));
      })
      .def_property_readonly("bos_token", [](const Tokenizer& t) -> py::object {
        return t.bos_token().empty() ? py::object(py::none()) : py::object(py::str(t.bos_token()));
      })
      .def_property_readonly("chat_family", [](const Tokenizer& t) { return chat_family_name(t.chat_format().family); })
      .def_property_readonly("chat_template", &Tokenizer::chat_template)
      .def_property_readonly("path", &Tokenizer::path)
      .def(
          "apply_chat_template",
          [](const Tokenizer& t, const py::iterable& messages, bool add_generation_prompt, const std::string& family) {
            const auto msgs = to_messages(messages);
            if (family.empty()) return t.apply_chat_template(msgs, add_generation_prompt);
            if (family == "deepseek_r1") {
              return t.apply_chat_template(msgs, add_generation_prompt,
                                           t.bos_token().empty() ? ChatFormat::deepseek_r1()
                                                                 : ChatFormat::deepseek_r1(t.bos_token()));
            }
            GENPRM_CHECK_ARG(family == "chatml", "apply_chat_template: family must be '', 'deepseek_r1' or 'chatml' (got '{}')",
                             family);
            return t.apply_chat_template(msgs, add_generation_prompt, ChatFormat::chatml());
          },
          py::arg("messages"), py::arg("add_generation_prompt") = false, py::arg("family") = std::string(),
          "Native rendering (DeepSeek-R1 or ChatML); ValueError for other families.");

  py::class_<StreamDecoder>(m, "StreamDecoder")
      .def(py::init<const Tokenizer&, bool>(), py::arg("tokenizer"), py::arg("skip_special_tokens") = false)
      .def("push", &StreamDecoder::push, py::arg("id"), "Newly final text (never splits a UTF-8 character).")
      .def("flush", &StreamDecoder::flush, "Remaining text; incomplete bytes become U+FFFD.")
      .def_property_readonly("pending_bytes", &StreamDecoder::pending_bytes);
}

}  // namespace genprm::bindings
