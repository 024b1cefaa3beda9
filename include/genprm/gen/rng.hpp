#pragma once
// Counter-based random numbers: one uniform per (seed, sample index, generated position), so a
// seeded request draws the same numbers whatever else is batched and however often it is
// preempted and recomputed. SplitMix64 finalizer (Steele, Lea, Flood 2014) chained over the key.
#include <cstdint>
#include <string_view>

namespace genprm {

inline uint64_t splitmix64(uint64_t z) {
  z += 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/// FNV-1a of a text: keys request seeds on content (a problem id, a solution's steps), so a seed
/// does not depend on what else was submitted, or in which order.
inline uint64_t fnv1a64(std::string_view text, uint64_t h = 0xcbf29ce484222325ull) {
  for (unsigned char c : text) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

/// Uniform double in [0, 1) keyed on (seed, sample index, generated position).
inline double counter_uniform(uint64_t seed, uint64_t sample_index, uint64_t position) {
  uint64_t h = splitmix64(splitmix64(splitmix64(seed) ^ sample_index) ^ position);
  return static_cast<double>(h >> 11) * (1.0 / 9007199254740992.0);  // 53 bits
}

}  // namespace genprm
