// SPDX-License-Identifier: BSD-3-Clause
// POST /hub/api/shutdown (scope `shutdown`): JupyterHub 3.0's
// {"proxy": bool, "servers": bool} → 202 {"message": "Shutting down Hub"}.
// `proxy` is accepted and has no effect: hubd is its own proxy and stops with it.
#include "app/api_call.h"
#include "hubcore/audit.h"
#include "hubcore/log.h"

namespace hubd {

void handleShutdownApi(Hub& hub, ApiCall& c) {
    if (c.request.method != "POST") return c.error(405, "Method Not Allowed");
    if (!c.require({"shutdown"}, {})) return;
    auto body = c.body();
    if (!body) return;
    bool servers = false;
    if (!body->isNull()) {
        if (!body->isObject()) return c.error(400, "Request body must be a JSON object");
        for (const auto& [key, value] : body->members()) {
            if (key != "proxy" && key != "servers")
                return c.error(400,
                               "Invalid key in request body: " + hub::safe(key, 50) + " (proxy, servers)");
            if (!value.isBool()) return c.error(400, key + " must be true or false");
            if (key == "servers") servers = value.asBool();
        }
    }
    hub::audit("hub.shutdown",
               {{"by", c.principal.name}, {"source", c.source}, {"servers", servers ? "stop" : "keep"}});
    std::string out;
    JsonWriter(out).beginObject().key("message").value("Shutting down Hub").endObject();
    c.json(202, std::move(out));
    hub.shutdown(servers);
}

}  // namespace hubd
