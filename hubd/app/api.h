// SPDX-License-Identifier: BSD-3-Clause
// The JupyterHub 3.0-compatible REST API under <base_url>hub/api/.
#pragma once

#include "app/hub.h"

namespace hubd {

class Hub::Api {
public:
    explicit Api(Hub& hub) : hub_(hub) {}
    // `path` is relative to <base_url>hub/api, e.g. "/users/bob".
    void handle(std::string_view path, hubd::http::Request& request, hubd::http::Responder responder);

private:
    Hub& hub_;
};

}  // namespace hubd
