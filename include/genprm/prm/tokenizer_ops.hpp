#pragma once
// TokenizerOps over the project's Tokenizer: encode without special tokens added (the chat
// template already contains them), decode, the tokenizer's own chat template, its
// end-of-sentence string, and the ids of `Yes` / `No` (the reference's
// tokenizer.encode('Yes')[-1]).
#include <string>
#include <vector>

#include "genprm/prm/verifier.hpp"
#include "genprm/tokenizer/tokenizer.hpp"

namespace genprm::prm {

/// `tok` is copied (it shares its immutable state). Throws ValueError when the tokenizer has no
/// chat template C++ can render or no single token for `Yes` / `No`.
inline TokenizerOps make_tokenizer_ops(const Tokenizer& tok) {
  TokenizerOps ops;
  ops.encode = [tok](const std::string& s) { return tok.encode(s, false); };
  ops.decode = [tok](const std::vector<int32_t>& ids) { return tok.decode(ids, false); };
  ops.render_chat = [tok](const std::vector<ChatTurn>& turns) { return tok.apply_chat_template(turns, false); };
  ops.eos_token = tok.eos_token();
  auto last_id = [&](const char* word) {
    std::vector<int32_t> ids = tok.encode(word, false);
    GENPRM_CHECK_ARG(!ids.empty(), "{}: '{}' encodes to no token", tok.path(), word);
    return ids.back();
  };
  ops.yes_id = last_id("Yes");
  ops.no_id = last_id("No");
  return ops;
}

}  // namespace genprm::prm
