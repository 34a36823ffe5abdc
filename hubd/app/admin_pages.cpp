// SPDX-License-Identifier: BSD-3-Clause
// The admin panel, /hub/admin: server-rendered, no JavaScript, no external
// assets. GET lists users; every change is a POST form with the _xsrf field,
// answered by a 303 back to the same list (filter, offset and limit kept)
// with a status message, and written to the audit log. Who may do what is
// decided by the scopes the REST API checks for the same action, so a
// custom role sees only the buttons it may use and the page never does what
// the API would refuse:
//   the page itself      admin-ui              the table     list:users (its filter applies)
//   add users            admin:users (all)     as admins     the full admin role (CVE-2024-41942)
//   remove a user        delete:users          toggle admin  admin:users; granting: full admin
//   start a server       servers               stop          delete:servers
//   read a server's log  read:servers          shut down     shutdown
//
// Stable hooks for tests and screenshots:
//   #admin                 the panel (section)     #admin-flash    status messages: li[data-flash=ok|error]
//   #admin-filter          GET form, input #name_filter           #admin-count    "Users 1-50 of 120"
//   #admin-prev, #admin-next  pagination links (absent at the ends)
//   #admin-users           the table; tbody tr[data-user=NAME][data-admin=true|false]
//                          [data-server=stopped|pending|running|stopping]
//     td.name, td.admin, td.server (.problem: why the last start failed),
//     td.activity / td.created (<time datetime=ISO title=ISO>), td.actions
//     buttons: button[name=action][value=start|stop|set_admin][data-user=NAME];
//     links:   a[data-action=log|remove][data-user=NAME]
//   #admin-add             form: textarea #add-names, checkbox #add-admin, button[value=add_users]
//   #admin-confirm-remove[data-user=NAME]  button #confirm-remove[value=remove], a #cancel-remove
//   #admin-shutdown        a #shutdown-start; #admin-confirm-shutdown: checkbox #shutdown-servers,
//                          button #confirm-shutdown[value=shutdown], a #cancel-shutdown
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <map>

#include "app/pages.h"
#include "hubcore/audit.h"
#include "hubcore/log.h"
#include "hubcore/time.h"
#include "hubcore/token.h"
#include "hubcore/username.h"

namespace hubd {

using hubd::http::Request;
using hubd::http::Responder;
using hubd::http::Response;

// Status messages on their way to the admin page after a 303: the redirect
// carries a random id (?flash=), never the text, so nobody can make the
// panel show words of their choosing with a crafted link.
class AdminFlashes {
public:
    struct Note {
        bool error = false;
        std::string text;
    };
    std::string put(int64_t userId, std::vector<Note> notes) {
        prune();
        std::string id = hub::generateToken().substr(0, 16);
        entries_[id] = Entry{userId, std::chrono::steady_clock::now() + kLifetime, std::move(notes)};
        return id;
    }
    const std::vector<Note>* get(const std::string& id, int64_t userId) {
        prune();
        auto it = entries_.find(id);
        return it != entries_.end() && it->second.userId == userId ? &it->second.notes : nullptr;
    }

private:
    static constexpr auto kLifetime = std::chrono::minutes(2);
    static constexpr size_t kMaxEntries = 256;
    struct Entry {
        int64_t userId = 0;
        std::chrono::steady_clock::time_point expires;
        std::vector<Note> notes;
    };
    void prune() {
        auto now = std::chrono::steady_clock::now();
        std::erase_if(entries_, [now](const auto& e) { return e.second.expires <= now; });
        while (entries_.size() >= kMaxEntries) {
            auto oldest = std::min_element(
                entries_.begin(), entries_.end(),
                [](const auto& a, const auto& b) { return a.second.expires < b.second.expires; });
            entries_.erase(oldest);
        }
    }
    std::map<std::string, Entry> entries_;
};

namespace {

using Note = AdminFlashes::Note;

constexpr size_t kMaxNamesPerAdd = 500;
constexpr auto kRemoveWait = std::chrono::seconds(10);

Resource userResource(const Hub& hub, const std::string& name) {
    return Resource{name, hub.groupsOf(name), name + "/", {}, {}};
}

// "3 minutes ago"; the exact time goes in the title.
std::string ago(hub::Timestamp then, hub::Timestamp now) {
    auto s = std::chrono::duration_cast<std::chrono::seconds>(now - then).count();
    auto plural = [](long long n, std::string_view unit) {
        return fmt::format("{} {}{} ago", n, unit, n == 1 ? "" : "s");
    };
    if (s < 60) return "just now";
    if (s < 3600) return plural(s / 60, "minute");
    if (s < 86400) return plural(s / 3600, "hour");
    return plural(s / 86400, "day");
}

std::string timeTag(hub::Timestamp t, std::string text) {
    std::string iso = hub::isoUtc(t);
    return fmt::format("<time datetime=\"{}\" title=\"{}\">{}</time>", iso, iso, htmlEscape(text));
}

// The list the page shows: filter, first row, rows per page.
struct ListView {
    std::string nameFilter;  // normalised, as the API's name_filter
    int64_t offset = 0;
    int64_t limit = 50;

    static ListView from(const Request& request, const hub::Settings& settings) {
        ListView v;
        v.limit = settings.apiPageDefaultLimit;
        auto number = [&](std::string_view key) -> std::optional<int64_t> {
            auto raw = request.queryParam(key);
            if (!raw || raw->empty() || raw->size() > 9) return std::nullopt;
            if (!std::all_of(raw->begin(), raw->end(), [](char c) { return c >= '0' && c <= '9'; }))
                return std::nullopt;
            return std::stoll(*raw);
        };
        if (auto f = request.queryParam("name_filter")) v.nameFilter = hub::normalizeUsername(*f);
        if (auto o = number("offset")) v.offset = *o;
        if (auto l = number("limit"); l && *l > 0) v.limit = std::min<int64_t>(*l, settings.apiPageMaxLimit);
        return v;
    }
    std::string query(int64_t atOffset, int64_t defaultLimit) const {
        std::string q;
        auto add = [&q](std::string_view key, const std::string& value) {
            q += (q.empty() ? "" : "&") + std::string(key) + "=" + urlEncode(value);
        };
        if (!nameFilter.empty()) add("name_filter", nameFilter);
        if (atOffset > 0) add("offset", std::to_string(atOffset));
        if (limit != defaultLimit) add("limit", std::to_string(limit));
        return q;
    }
};

// One request to the panel by a holder of admin-ui.
class AdminPanel {
public:
    AdminPanel(Hub& hub, const Request& request, const hub::UserRecord& me,
               std::shared_ptr<AdminFlashes> flashes)
        : hub_(hub),
          request_(request),
          me_(me),
          scopes_(hub.userScopes(me)),
          fullAdmin_(isFullAdmin(scopes_)),
          flashes_(std::move(flashes)),
          view_(ListView::from(request, hub.settings())),
          source_(hub.clientView(request).address),
          xsrf_(hiddenXsrf(hub.xsrfToken(Hub::browserSessionId(request), &me))) {}

    Response render() const;
    // Runs the posted action and answers with the 303 (or, for a shutdown,
    // the goodbye page). Removing a running user's server answers once it stopped.
    void act(Responder responder);

private:
    bool may(std::string_view scope, const std::string& user) const {
        return holds(scopes_, scope, userResource(hub_, user));
    }
    // Unfiltered: the API checks these with an empty resource.
    bool mayAll(std::string_view scope) const { return holdsUnfiltered(scopes_, scope); }
    std::string adminUrl(int64_t offset) const {
        std::string q = view_.query(offset, hub_.settings().apiPageDefaultLimit);
        return hub_.hubPrefix() + "admin" + (q.empty() ? "" : "?" + q);
    }
    std::string formOpen() const {
        return fmt::format("<form method=\"post\" action=\"{}\">{}", htmlEscape(adminUrl(view_.offset)),
                           xsrf_);
    }
    std::string userButton(const std::string& name, std::string_view action, std::string_view label,
                           std::string_view extra = {}) const {
        std::string n = htmlEscape(name);
        return fmt::format(
            "{}<input type=\"hidden\" name=\"user\" value=\"{}\">{}<button type=\"submit\" name=\"action\" "
            "value=\"{}\" data-user=\"{}\">{}</button></form>",
            formOpen(), n, extra, action, n, label);
    }
    std::string flashHtml() const;
    std::string confirmHtml() const;
    std::string rowHtml(const hub::UserRecord& u, hub::Timestamp now) const;
    std::string addFormHtml() const;
    std::string shutdownHtml() const;
    void audit(std::string_view event, const std::string& user, std::string_view key = {},
               std::string_view value = {}) const {
        if (key.empty())
            hub::audit(event, {{"user", user}, {"by", me_.name}, {"source", source_}, {"via", "admin-page"}});
        else
            hub::audit(
                event,
                {{"user", user}, {"by", me_.name}, {"source", source_}, {"via", "admin-page"}, {key, value}});
    }
    std::string redirectTo(std::vector<Note> notes) const {
        std::string url = adminUrl(view_.offset);
        std::string id = flashes_->put(me_.id, std::move(notes));
        return url + (url.find('?') == std::string::npos ? "?" : "&") + "flash=" + id;
    }

    std::vector<Note> addUsers(const std::map<std::string, std::string>& form);
    std::vector<Note> setAdmin(const hub::UserRecord& u, bool admin);
    std::vector<Note> startServer(const hub::UserRecord& u);
    std::vector<Note> stopServer(const hub::UserRecord& u);
    void removeUser(const hub::UserRecord& u, const std::map<std::string, std::string>& form,
                    Responder responder);
    void shutdown(const std::map<std::string, std::string>& form, Responder responder);

    Hub& hub_;
    const Request& request_;
    const hub::UserRecord& me_;
    ScopeSet scopes_;
    bool fullAdmin_;
    std::shared_ptr<AdminFlashes> flashes_;
    ListView view_;
    std::string source_;
    std::string xsrf_;  // the hidden _xsrf field of every form
};

std::string AdminPanel::flashHtml() const {
    auto id = request_.queryParam("flash");
    const std::vector<Note>* notes = id ? flashes_->get(*id, me_.id) : nullptr;
    if (!notes || notes->empty()) return {};
    std::string html = "<ul id=\"admin-flash\" role=\"status\">";
    for (const auto& n : *notes)
        html += fmt::format("<li class=\"{}\" data-flash=\"{}\">{}</li>", n.error ? "error" : "notice",
                            n.error ? "error" : "ok", htmlEscape(n.text));
    return html + "</ul>\n";
}

std::string AdminPanel::confirmHtml() const {
    std::string cancel = htmlEscape(adminUrl(view_.offset));
    if (auto name = request_.queryParam("confirm_remove")) {
        const hub::UserRecord* u = hub_.findUser(*name);
        if (!u || !may("delete:users", u->name) || u->id == me_.id) return {};
        std::string n = htmlEscape(u->name);
        const ServerState* st = hub_.servers().state(u->id);
        bool running = st && st->phase != ServerState::Phase::Stopped;
        return fmt::format(
            "<section id=\"admin-confirm-remove\" class=\"confirm\" data-user=\"{}\">\n"
            "<h2>Remove {}?</h2>\n<p>{}They are removed from the hub's database and can no longer sign in "
            "unless the configuration allows them again. Their files and Unix account are not touched.</p>\n"
            "{}<input type=\"hidden\" name=\"user\" value=\"{}\"><input type=\"hidden\" name=\"confirm\" "
            "value=\"yes\"><button type=\"submit\" name=\"action\" value=\"remove\" id=\"confirm-remove\" "
            "data-user=\"{}\">Remove {}</button> <a id=\"cancel-remove\" href=\"{}\">Cancel</a></form>\n"
            "</section>\n",
            n, n, running ? "Their server is stopped first. " : "", formOpen(), n, n, n, cancel);
    }
    if (request_.queryParam("confirm_shutdown") && mayAll("shutdown")) {
        return fmt::format(
            "<section id=\"admin-confirm-shutdown\" class=\"confirm\">\n<h2>Shut down the hub?</h2>\n"
            "<p>The hub stops and nobody can sign in until it is started again. Users' servers keep running "
            "(the next start reattaches them) unless you tick the box.</p>\n"
            "{}<p><input type=\"checkbox\" name=\"servers\" value=\"on\" id=\"shutdown-servers\"> "
            "<label for=\"shutdown-servers\">Also stop every user's server</label></p>"
            "<input type=\"hidden\" name=\"confirm\" value=\"yes\"><button type=\"submit\" name=\"action\" "
            "value=\"shutdown\" id=\"confirm-shutdown\">Shut down the hub</button> "
            "<a id=\"cancel-shutdown\" href=\"{}\">Cancel</a></form>\n</section>\n",
            formOpen(), cancel);
    }
    return {};
}

std::string AdminPanel::rowHtml(const hub::UserRecord& u, hub::Timestamp now) const {
    const ServerState* st = hub_.servers().state(u.id);
    auto phase = st ? st->phase : ServerState::Phase::Stopped;
    std::string_view state = "stopped", label = "not running";
    if (phase == ServerState::Phase::Spawning) state = label = "pending";
    if (phase == ServerState::Phase::Running) state = label = "running";
    if (phase == ServerState::Phase::Stopping) state = label = "stopping";
    std::string server(label);
    if (st && phase == ServerState::Phase::Stopped) {
        std::string problem = st->startFailed && !st->lastError.empty() ? st->lastError
                              : !st->lastExit.empty()                   ? "Server " + st->lastExit
                                                                        : st->lastError;
        if (!problem.empty())
            server += "<br><span class=\"problem\">" + htmlEscape(hub::safe(problem, 300)) + "</span>";
    }
    std::string activity = u.lastActivity ? timeTag(*u.lastActivity, ago(*u.lastActivity, now)) : "never";
    std::string created = timeTag(u.created, hub::isoUtc(u.created).substr(0, 10));

    std::string actions;
    const std::string& name = u.name;
    const std::string prefix = hub_.hubPrefix();
    if (phase == ServerState::Phase::Stopped && may("servers", name))
        actions += userButton(name, "start", "Start server");
    if ((phase == ServerState::Phase::Running || phase == ServerState::Phase::Spawning) &&
        may("delete:servers", name))
        actions += userButton(name, "stop", "Stop server");
    if (phase == ServerState::Phase::Running && may("read:servers", name))
        actions += fmt::format("<a data-action=\"log\" data-user=\"{}\" href=\"{}\">Log</a>",
                               htmlEscape(name), htmlEscape(prefix + "server-log?user=" + urlEncode(name)));
    if (may("admin:users", name)) {
        if (!u.admin && fullAdmin_)
            actions += userButton(name, "set_admin", "Make admin",
                                  "<input type=\"hidden\" name=\"admin\" value=\"true\">");
        if (u.admin && u.id != me_.id)
            actions += userButton(name, "set_admin", "Revoke admin",
                                  "<input type=\"hidden\" name=\"admin\" value=\"false\">");
    }
    if (may("delete:users", name) && u.id != me_.id) {
        std::string q = view_.query(view_.offset, hub_.settings().apiPageDefaultLimit);
        std::string url =
            prefix + "admin?" + q + (q.empty() ? "" : "&") + "confirm_remove=" + urlEncode(name);
        actions += fmt::format("<a data-action=\"remove\" data-user=\"{}\" href=\"{}\">Remove…</a>",
                               htmlEscape(name), htmlEscape(url));
    }
    if (u.id == me_.id) actions += "<span class=\"self\">(you)</span>";
    return fmt::format(
        "<tr data-user=\"{}\" data-admin=\"{}\" data-server=\"{}\"><td class=\"name\">{}</td>"
        "<td class=\"admin\">{}</td><td class=\"server\">{}</td><td class=\"activity\">{}</td>"
        "<td class=\"created\">{}</td><td class=\"actions\">{}</td></tr>\n",
        htmlEscape(name), u.admin ? "true" : "false", state, htmlEscape(name), u.admin ? "admin" : "", server,
        activity, created, actions);
}

std::string AdminPanel::addFormHtml() const {
    if (!mayAll("admin:users")) return {};
    std::string pam =
        hub_.settings().authenticatorClass == "pam"
            ? " With PAM, each name must already be a Unix account (<code>adduser NAME</code>): "
              "hubd never creates system users."
            : "";
    std::string adminBox = fullAdmin_
                               ? "<p><input type=\"checkbox\" name=\"admin\" value=\"on\" id=\"add-admin\"> "
                                 "<label for=\"add-admin\">Make them admins</label></p>"
                               : "";
    return fmt::format(
        "<section id=\"admin-add\">\n<h2>Add users</h2>\n{}"
        "<label for=\"add-names\">Names, one per line or separated by spaces</label>\n"
        "<textarea id=\"add-names\" name=\"names\" rows=\"4\" cols=\"30\" autocapitalize=\"off\" "
        "autocorrect=\"off\" spellcheck=\"false\"></textarea>\n"
        "<p class=\"hint\">Added users may sign in from now on, also after a restart.{}</p>\n{}"
        "<button type=\"submit\" name=\"action\" value=\"add_users\" id=\"add-submit\">Add users</button>"
        "</form>\n</section>\n",
        formOpen(), pam, adminBox);
}

std::string AdminPanel::shutdownHtml() const {
    if (!mayAll("shutdown")) return {};
    std::string q = view_.query(view_.offset, hub_.settings().apiPageDefaultLimit);
    std::string url = hub_.hubPrefix() + "admin?" + q + (q.empty() ? "" : "&") + "confirm_shutdown=1";
    return fmt::format(
        "<section id=\"admin-shutdown\">\n<h2>Hub</h2>\n<p><a id=\"shutdown-start\" href=\"{}\">Shut down "
        "the "
        "hub…</a></p>\n</section>\n",
        htmlEscape(url));
}

Response AdminPanel::render() const {
    std::string body = "<section id=\"admin\">\n<h1>Admin</h1>\n" + flashHtml() + confirmHtml();
    body += fmt::format(
        "<form id=\"admin-filter\" method=\"get\" action=\"{}admin\" role=\"search\">"
        "<label for=\"name_filter\">Filter by name</label> "
        "<input type=\"text\" id=\"name_filter\" name=\"name_filter\" value=\"{}\" autocapitalize=\"off\">{}"
        " <button type=\"submit\">Filter</button></form>\n",
        hub_.hubPrefix(), htmlEscape(view_.nameFilter),
        view_.limit != hub_.settings().apiPageDefaultLimit
            ? fmt::format("<input type=\"hidden\" name=\"limit\" value=\"{}\">", view_.limit)
            : "");

    auto listing = scopes_.find("list:users");
    if (listing == scopes_.end()) {
        body +=
            "<p class=\"notice\" id=\"admin-count\">Your roles do not include list:users, so no users are "
            "listed here.</p>\n";
    } else {
        std::vector<const hub::UserRecord*> rows;
        for (const auto* u : hub_.users()) {
            if (!appliesTo(listing->second, userResource(hub_, u->name))) continue;
            if (!view_.nameFilter.empty() && u->name.find(view_.nameFilter) == std::string::npos) continue;
            rows.push_back(u);
        }
        std::sort(rows.begin(), rows.end(), [](const auto* a, const auto* b) { return a->name < b->name; });
        auto total = static_cast<int64_t>(rows.size());
        int64_t first = std::min(view_.offset, total);
        int64_t last = std::min(first + view_.limit, total);
        body += total == 0
                    ? std::string("<p id=\"admin-count\">No users match.</p>\n")
                    : fmt::format("<p id=\"admin-count\">Users {}–{} of {}</p>\n", first + 1, last, total);
        body +=
            "<table id=\"admin-users\">\n<thead><tr><th scope=\"col\">Name</th><th scope=\"col\">Admin</th>"
            "<th scope=\"col\">Server</th><th scope=\"col\">Last activity</th><th scope=\"col\">Created</th>"
            "<th scope=\"col\">Actions</th></tr></thead>\n<tbody>\n";
        hub::Timestamp now = hub::now();
        for (int64_t i = first; i < last; ++i) body += rowHtml(*rows[static_cast<size_t>(i)], now);
        body += "</tbody>\n</table>\n<nav class=\"pages\" aria-label=\"Pages\">";
        if (first > 0)
            body += fmt::format("<a id=\"admin-prev\" rel=\"prev\" href=\"{}\">Previous</a> ",
                                htmlEscape(adminUrl(std::max<int64_t>(0, first - view_.limit))));
        if (last < total)
            body += fmt::format("<a id=\"admin-next\" rel=\"next\" href=\"{}\">Next</a>",
                                htmlEscape(adminUrl(last)));
        body += "</nav>\n";
    }
    body += addFormHtml() + shutdownHtml() + "</section>";
    return renderHubPage(hub_, 200, "Admin", body, &me_);
}

std::vector<Note> AdminPanel::addUsers(const std::map<std::string, std::string>& form) {
    if (!mayAll("admin:users")) return {{true, "You may not add users: that needs the admin:users scope."}};
    auto field = form.find("names");
    std::vector<std::string> names;
    if (field != form.end()) {
        const std::string& text = field->second;
        size_t pos = 0;
        while (pos < text.size()) {
            size_t start = text.find_first_not_of(" \t\r\n\f\v", pos);
            if (start == std::string::npos) break;
            size_t end = text.find_first_of(" \t\r\n\f\v", start);
            if (end == std::string::npos) end = text.size();
            names.push_back(text.substr(start, end - start));
            pos = end;
        }
    }
    if (names.empty()) return {{true, "Enter at least one name to add."}};
    if (names.size() > kMaxNamesPerAdd)
        return {
            {true, fmt::format("Add at most {} users at a time ({} given).", kMaxNamesPerAdd, names.size())}};
    bool admin = form.count("admin") > 0;
    if (admin && !fullAdmin_) return {{true, "Only admins can create admin users."}};

    auto check = hub_.checkNewUsers(names);
    std::vector<Note> notes;
    if (!check.toAdd.empty()) {
        auto result = hub_.createUsers(check.toAdd, admin);
        std::string added;
        for (const auto* u : result.created) {
            audit("user.create", u->name, "admin", admin ? "true" : "false");
            added += (added.empty() ? "" : ", ") + u->name;
        }
        if (!result.created.empty()) {
            hub::logInfo("Created {} user(s) (admin: {}) on the admin page by {}: {}", result.created.size(),
                         admin, me_.name, hub::safe(added, 300));
            notes.push_back(
                {false, fmt::format("Added {} {}{}: {}", result.created.size(), admin ? "admin" : "user",
                                    result.created.size() == 1 ? "" : "s", hub::safe(added, 2000))});
        }
        if (!result.error.empty()) notes.push_back({true, result.error});
    }
    for (const auto& r : check.refused)
        notes.push_back({true, fmt::format("“{}”: {}.", hub::safe(r.name, 80), r.reason)});
    return notes;
}

std::vector<Note> AdminPanel::setAdmin(const hub::UserRecord& u, bool admin) {
    if (!may("admin:users", u.name))
        return {{true, fmt::format("You may not change {}: that needs the admin:users scope.", u.name)}};
    if (u.admin == admin)
        return {{false, fmt::format("{} {} an admin already.", u.name, admin ? "is" : "is not")}};
    if (admin && !fullAdmin_) return {{true, "Only admins can grant admin permissions."}};
    if (!admin && u.id == me_.id)
        return {{true,
                 "You cannot revoke your own admin rights: ask another admin, so the hub is never left "
                 "without one by accident."}};
    hub::UserRecord changed = u;
    changed.admin = admin;
    std::string name = u.name;
    hub_.updateUser(changed);
    hub::logInfo("{} {} admin on the admin page by {}", name, admin ? "made" : "no longer", me_.name);
    audit("user.admin", name, "admin", admin ? "true" : "false");
    std::vector<Note> notes{{false, fmt::format("{} is {} an admin.", name, admin ? "now" : "no longer")}};
    const auto& configured = hub_.settings().adminUsers;
    if (!admin && std::any_of(configured.begin(), configured.end(),
                              [&](const std::string& a) { return hub::normalizeUsername(a) == name; }))
        notes.push_back(
            {true, fmt::format("{} is in Authenticator.admin_users and becomes admin again at the "
                               "next sign-in: remove the name from the configuration file too.",
                               name)});
    return notes;
}

std::vector<Note> AdminPanel::startServer(const hub::UserRecord& u) {
    if (!may("servers", u.name))
        return {{true, fmt::format("You may not start {}'s server: that needs the servers scope.", u.name)}};
    const ServerState* st = hub_.servers().state(u.id);
    if (st && st->phase == ServerState::Phase::Running)
        return {{false, fmt::format("{}'s server is already running.", u.name)}};
    if (st && st->phase == ServerState::Phase::Spawning)
        return {{false, fmt::format("{}'s server is already starting.", u.name)}};
    // The normal spawn path; the page does not wait for it to finish.
    if (auto err = hub_.servers().start(u, nullptr))
        return {{true, fmt::format("{}'s server cannot start: {}", u.name, *err)}};
    hub::logInfo("{} started {}'s server on the admin page", me_.name, u.name);
    audit("server.start", u.name);
    return {{false, fmt::format("{}'s server is starting.", u.name)}};
}

std::vector<Note> AdminPanel::stopServer(const hub::UserRecord& u) {
    if (!may("delete:servers", u.name))
        return {{true,
                 fmt::format("You may not stop {}'s server: that needs the delete:servers scope.", u.name)}};
    const ServerState* st = hub_.servers().state(u.id);
    if (!st || st->phase == ServerState::Phase::Stopped)
        return {{false, fmt::format("{}'s server is not running.", u.name)}};
    if (st->phase == ServerState::Phase::Stopping)
        return {{false, fmt::format("{}'s server is already stopping.", u.name)}};
    if (auto err = hub_.servers().stop(u, nullptr))
        return {{true, fmt::format("{}'s server cannot stop: {}", u.name, *err)}};
    hub::logInfo("{} stopped {}'s server on the admin page", me_.name, u.name);
    audit("server.stop", u.name);
    return {{false, fmt::format("{}'s server is stopping.", u.name)}};
}

void AdminPanel::removeUser(const hub::UserRecord& u, const std::map<std::string, std::string>& form,
                            Responder responder) {
    auto answer = [&](std::vector<Note> notes) {
        responder.send(redirect(303, redirectTo(std::move(notes))));
    };
    if (!may("delete:users", u.name))
        return answer(
            {{true, fmt::format("You may not remove {}: that needs the delete:users scope.", u.name)}});
    if (u.id == me_.id) return answer({{true, "You cannot remove yourself: ask another admin to do it."}});
    auto confirm = form.find("confirm");
    if (confirm == form.end() || confirm->second != "yes")
        return answer({{true, fmt::format("{} was not removed: confirm the removal first.", u.name)}});
    const ServerState* st = hub_.servers().state(u.id);
    bool running = st && st->phase != ServerState::Phase::Stopped;
    if (running && !may("delete:servers", u.name))
        return answer({{true, fmt::format("{}'s server is running and you may not stop it (delete:servers): "
                                          "{} was not removed.",
                                          u.name, u.name)}});

    // Removal after the server stopped; the answer goes out at the latest
    // after kRemoveWait, saying the removal follows the stop.
    struct Pending {
        Responder responder;
        std::string location;  // the admin list, without flash
        bool answered = false;
    };
    auto pending = std::make_shared<Pending>(Pending{std::move(responder), adminUrl(view_.offset), false});
    auto flashes = flashes_;
    int64_t meId = me_.id;
    auto reply = [pending, flashes, meId](std::vector<Note> notes) {
        if (pending->answered) return;
        pending->answered = true;
        std::string id = flashes->put(meId, std::move(notes));
        std::string url = pending->location;
        pending->responder.send(
            redirect(303, url + (url.find('?') == std::string::npos ? "?" : "&") + "flash=" + id));
    };
    Hub* hub = &hub_;
    int64_t id = u.id;
    std::string name = u.name, by = me_.name, source = source_;
    auto finish = [hub, id, name, by, source, reply] {
        const ServerState* s = hub->servers().state(id);
        if (!hub->findUserById(id)) return reply({{false, fmt::format("{} was already removed.", name)}});
        if (s && s->phase != ServerState::Phase::Stopped)
            return reply({{true, fmt::format("{}'s server did not stop{}: {} was not removed.", name,
                                             s->lastError.empty() ? "" : " (" + s->lastError + ")", name)}});
        hub->deleteUser(id);
        hub::logInfo("Deleted user {} on the admin page by {}", name, by);
        hub::audit("user.delete", {{"user", name}, {"by", by}, {"source", source}, {"via", "admin-page"}});
        reply({{false, fmt::format("Removed {}.", name)}});
    };
    if (!running) return finish();
    audit("server.stop", name);
    if (auto err = hub_.servers().stop(u, finish)) return finish();
    hub_.loop().addTimer(kRemoveWait, [reply, name] {
        reply({{false, fmt::format("{}'s server is still stopping; {} is removed once it has stopped.", name,
                                   name)}});
    });
}

void AdminPanel::shutdown(const std::map<std::string, std::string>& form, Responder responder) {
    auto confirm = form.find("confirm");
    if (!mayAll("shutdown"))
        return responder.send(redirect(303, redirectTo({{true,
                                                         "You may not shut down the hub: that needs the "
                                                         "shutdown scope."}})));
    if (confirm == form.end() || confirm->second != "yes")
        return responder.send(redirect(303, redirectTo({{true, "Confirm the shutdown first."}})));
    bool servers = form.count("servers") > 0;
    // As POST /hub/api/shutdown: audited, answered, then the loop stops.
    hub::audit("hub.shutdown", {{"by", me_.name},
                                {"source", source_},
                                {"via", "admin-page"},
                                {"servers", servers ? "stop" : "keep"}});
    hub::logInfo("{} shut down the hub on the admin page (servers: {})", me_.name, servers ? "stop" : "keep");
    std::string body = fmt::format(
        "<section id=\"admin-shutdown-done\"><h1>The hub is shutting down</h1>\n<p>{}</p>\n"
        "<p>Start it again with your service manager (<code>systemctl start hubd</code>).</p></section>",
        servers ? "Every user's server is being stopped first." : "Users' servers keep running.");
    responder.send(renderHubPage(hub_, 200, "Shutting down", body, &me_));
    hub_.shutdown(servers);
}

void AdminPanel::act(Responder responder) {
    auto form = parseForm(request_.body);
    const std::string action = form["action"];
    auto answer = [&](std::vector<Note> notes) {
        responder.send(redirect(303, redirectTo(std::move(notes))));
    };
    if (action == "add_users") return answer(addUsers(form));
    if (action == "shutdown") return shutdown(form, std::move(responder));
    if (action != "remove" && action != "set_admin" && action != "start" && action != "stop")
        return answer({{true, "Unknown action: use the page's buttons."}});
    const hub::UserRecord* u = hub_.findUser(form["user"]);
    if (!u) return answer({{true, fmt::format("No such user “{}”.", hub::safe(form["user"], 80))}});
    if (action == "remove") return removeUser(*u, form, std::move(responder));
    if (action == "set_admin") {
        const std::string& v = form["admin"];
        if (v != "true" && v != "false") return answer({{true, "admin must be true or false."}});
        return answer(setAdmin(*u, v == "true"));
    }
    if (action == "start") return answer(startServer(*u));
    answer(stopServer(*u));
}

}  // namespace

void Hub::Pages::admin(Request& request, Responder responder) {
    const hub::UserRecord* user = hub_.cookieUser(request);
    if (!user) {
        std::string here = request.rawPath + (request.query.empty() ? "" : "?" + request.query);
        if (request.method == "POST") here = hub_.hubPrefix() + "admin";
        return responder.send(redirect(request.method == "POST" ? 303 : 302,
                                       hub_.hubPrefix() + "login?next=" + urlEncode(here)));
    }
    if (!hub_.userScopes(*user).count("admin-ui")) {
        hub::logWarning("{} opened the admin page without the admin-ui scope, from {}", user->name,
                        hub_.clientView(request).address);
        return responder.send(
            page(403, "Admins only",
                 "<h1>403: Admins only</h1>\n<p class=\"error\" id=\"admin-forbidden\">The admin "
                 "page is for admins of this hub (it needs the admin-ui scope, which the admin "
                 "role has). If you need it, ask an admin to make you one.</p>",
                 user));
    }
    if (!adminFlashes_) adminFlashes_ = std::make_shared<AdminFlashes>();
    AdminPanel panel(hub_, request, *user, adminFlashes_);
    if (request.method == "POST") {
        if (!xsrfPosted(request, user))
            return responder.send(
                page(403, "Form expired",
                     "<h1>Nothing changed</h1>\n<p class=\"error\" id=\"admin-xsrf\">This form "
                     "has expired or was not sent from this hub's own page (XSRF check "
                     "failed). Go back, reload the admin page and try again.</p>",
                     user));
        return panel.act(std::move(responder));
    }
    responder.send(panel.render());
}

}  // namespace hubd
