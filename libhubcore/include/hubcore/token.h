// SPDX-License-Identifier: BSD-3-Clause
// API tokens: generation, hashing and verification, compatible with
// JupyterHub 3.0 (sha512, salt as hex text, token fed `rounds` times).
//
// MUST: only hashes are stored. MUST: comparisons are constant-time.
#pragma once

#include <string>
#include <string_view>

namespace hub {

// 32 lowercase hex characters from the OS CSPRNG (like uuid4().hex).
std::string generateToken();
// n random bytes as lowercase hex (2n characters).
std::string randomHex(size_t nBytes);

// Rounds: 1 for hub-generated tokens, 16384 for user-provided ones and
// OAuth client secrets, as JupyterHub does.
constexpr int kGeneratedTokenRounds = 1;
constexpr int kUserTokenRounds = 16384;

// "sha512:<rounds>:<16 hex salt>:<128 hex digest>"
std::string hashToken(std::string_view token, int rounds);
std::string hashToken(std::string_view token, int rounds, std::string_view salt);
// Recomputes with the stored algorithm, rounds and salt; constant-time compare.
// False for malformed hashes.
bool verifyToken(std::string_view token, std::string_view hashed);
// First 4 characters (the lookup prefix).
std::string tokenPrefix(std::string_view token);

bool constantTimeEquals(std::string_view a, std::string_view b);

}  // namespace hub
