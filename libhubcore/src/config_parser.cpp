// SPDX-License-Identifier: BSD-3-Clause
// Reads jupyterhub_config.py statements (c.Class.trait = <literal>) and --Class.trait=value options.
#include <fmt/format.h>

#include "hubcore/config.h"

namespace hub {
namespace {

// Same wording as pyliteral.cpp: users see both as one rule.
std::string unsupported(std::string_view what) {
    return fmt::format(
        "{} is not supported: hubd configuration files contain only c.Class.trait = <literal> assignments",
        what);
}

using Kind = PyToken::Kind;

bool isOp(const PyToken& t, std::string_view op) {
    return t.kind == Kind::Op && t.text == op;
}
bool isName(const PyToken& t) {
    return t.kind == Kind::Name;
}
bool isStatementEnd(const PyToken& t) {
    return t.kind == Kind::Newline || t.kind == Kind::End || isOp(t, ";");
}
bool isAugmented(const PyToken& t) {
    return t.kind == Kind::Op && t.text.size() >= 2 && t.text.back() == '=' && t.text != "==" &&
           t.text != "<=" && t.text != ">=" && t.text != "!=";
}

// What a statement starting with a keyword is called in messages.
std::string keywordConstruct(std::string_view word) {
    if (word == "import" || word == "from") return "import";
    if (word == "for") return "a for loop";
    if (word == "while") return "a while loop";
    if (word == "if" || word == "elif" || word == "else") return "an if statement";
    if (word == "def") return "a function definition";
    if (word == "class") return "a class definition";
    if (word == "with") return "a with statement";
    if (word == "try" || word == "except" || word == "finally") return "a try statement";
    if (word == "lambda") return "a lambda";
    if (word == "async" || word == "await") return "async code";
    static constexpr std::string_view others[] = {"assert",   "break", "continue", "del",    "global",
                                                  "nonlocal", "pass",  "raise",    "return", "yield"};
    for (auto w : others)
        if (word == w) return fmt::format("a '{}' statement", word);
    return {};
}

class StatementParser {
public:
    StatementParser(const std::vector<PyToken>& tokens, std::string_view file,
                    std::vector<ConfigDiagnostic>& diagnostics, std::vector<Assignment>& out)
        : t_(tokens), file_(file), diagnostics_(diagnostics), out_(out) {}

    void run() {
        bool lineStart = true;
        bool skipIndented = false;  // the block of a rejected compound statement
        while (peek().kind != Kind::End) {
            if (peek().kind == Kind::Newline) {
                ++pos_;
                lineStart = true;
                continue;
            }
            if (lineStart && peek().column > 0) {
                if (!skipIndented)
                    error(
                        peek().line,
                        "unexpected indentation: each c.Class.trait = <literal> assignment must start at the "
                        "beginning of its line");
                skipLogicalLine();
                continue;
            }
            if (lineStart) skipIndented = false;
            lineStart = false;
            if (!statement()) {
                skipIndented = true;
                skipLogicalLine();
                lineStart = true;
                continue;
            }
            if (isOp(peek(), ";")) ++pos_;
        }
    }

private:
    const PyToken& peek(std::size_t k = 0) const { return t_[std::min(pos_ + k, t_.size() - 1)]; }

    void error(int line, std::string message) {
        ConfigDiagnostic d;
        d.severity = ConfigDiagnostic::Severity::Error;
        d.file = std::string(file_);
        d.line = line;
        d.message = std::move(message);
        diagnostics_.push_back(std::move(d));
    }

    void skipLogicalLine() {
        while (peek().kind != Kind::Newline && peek().kind != Kind::End) ++pos_;
    }

    // Parses one statement; on false an error has been reported.
    bool statement() {
        const PyToken& first = peek();
        const int line = first.line;
        if (first.kind == Kind::FString) {
            error(line, unsupported("an f-string"));
            return false;
        }
        if (first.kind == Kind::Str || first.kind == Kind::Bytes) return docstring();
        if (!isName(first)) {
            if (first.kind == Kind::Op && first.text == "@") {
                error(line, unsupported("a decorator"));
                return false;
            }
            // A literal or operator opening a statement is an expression, e.g. `1 + 2` or `(x)`.
            error(line, unsupported("an expression statement"));
            return false;
        }
        if (const std::string construct = keywordConstruct(first.text); !construct.empty()) {
            error(line, unsupported(construct));
            return false;
        }
        if (first.text == "c") return cStatement();
        return otherNameStatement();
    }

    // A bare string is a docstring or comment-like text, which Python evaluates to nothing.
    bool docstring() {
        PySyntaxError err;
        const auto value = parsePyLiteral(t_, pos_, err);
        if (!value) {
            error(err.line, err.message);
            return false;
        }
        if (value->kind != PyValue::Kind::Str && value->kind != PyValue::Kind::Bytes) {
            error(peek().line, unsupported("an expression statement"));
            return false;
        }
        return true;
    }

    bool cStatement() {
        const int line = peek().line;
        // `c = get_config()` starts every generated jupyterhub_config.py; it binds c, no more.
        if (isOp(peek(1), "=")) {
            if (isName(peek(2)) && peek(2).text == "get_config" && isOp(peek(3), "(") && isOp(peek(4), ")") &&
                isStatementEnd(peek(5))) {
                pos_ += 5;
                return true;
            }
            error(line, unsupported("assigning anything but get_config() to c"));
            return false;
        }
        if (!isOp(peek(1), ".") || !isName(peek(2))) {
            error(line, unsupported("an expression using c"));
            return false;
        }
        const std::string cls = peek(2).text;
        if (isOp(peek(3), "=")) {
            error(line, unsupported(fmt::format("assigning a whole section (c.{} = ...); assign each trait "
                                                "as c.{}.trait = <literal>",
                                                cls, cls)));
            return false;
        }
        if (!isOp(peek(3), ".") || !isName(peek(4))) {
            error(line, unsupported(fmt::format("this use of c.{}", cls)));
            return false;
        }
        const std::string trait = peek(4).text;
        const std::string target = fmt::format("c.{}.{}", cls, trait);
        const PyToken& after = peek(5);
        if (isOp(after, ".")) {
            std::string chain = target;
            std::size_t k = 5;
            while (isOp(peek(k), ".") && isName(peek(k + 1))) {
                chain += '.' + peek(k + 1).text;
                k += 2;
            }
            if (isOp(peek(k), "("))
                error(line, unsupported(fmt::format("calling {}()", chain)));
            else
                error(line, unsupported(fmt::format("the attribute chain {}", chain)));
            return false;
        }
        if (isOp(after, "[")) {
            error(line, unsupported(fmt::format("a subscript ({}[...])", target)));
            return false;
        }
        if (isOp(after, "(")) {
            error(line, unsupported(fmt::format("calling {}()", target)));
            return false;
        }
        if (isAugmented(after)) {
            error(line, unsupported(fmt::format("augmented assignment ({} {})", target, after.text)));
            return false;
        }
        if (isOp(after, ":")) {
            error(line, unsupported("an annotated assignment"));
            return false;
        }
        if (!isOp(after, "=")) {
            error(line, unsupported(fmt::format("an expression using {}", target)));
            return false;
        }
        pos_ += 6;
        PySyntaxError err;
        auto value = parsePyLiteral(t_, pos_, err);
        if (!value) {
            error(err.line, err.message);
            return false;
        }
        Assignment a;
        a.cls = cls;
        a.trait = trait;
        a.value = std::move(*value);
        a.file = std::string(file_);
        a.line = line;
        out_.push_back(std::move(a));
        return true;
    }

    bool otherNameStatement() {
        const int line = peek().line;
        std::string dotted = peek().text;
        std::size_t k = 1;
        while (isOp(peek(k), ".") && isName(peek(k + 1))) {
            dotted += '.' + peek(k + 1).text;
            k += 2;
        }
        const PyToken& next = peek(k);
        if (isOp(next, "("))
            error(line, unsupported(fmt::format("calling {}()", dotted)));
        else if (isOp(next, "="))
            error(line,
                  unsupported(fmt::format("assigning to {} (only c.Class.trait can be assigned)", dotted)));
        else if (isOp(next, "["))
            error(line, unsupported(fmt::format("a subscript ({}[...])", dotted)));
        else if (isAugmented(next))
            error(line, unsupported(fmt::format("augmented assignment ({} {})", dotted, next.text)));
        else
            error(line, unsupported(fmt::format("an expression using {}", dotted)));
        return false;
    }

    const std::vector<PyToken>& t_;
    std::string_view file_;
    std::vector<ConfigDiagnostic>& diagnostics_;
    std::vector<Assignment>& out_;
    std::size_t pos_ = 0;
};

bool isIdentifier(std::string_view s) {
    if (s.empty() || (s[0] >= '0' && s[0] <= '9')) return false;
    for (char c : s)
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'))
            return false;
    return true;
}

bool validUtf8(std::string_view s) {
    std::vector<PyToken> tokens;
    PySyntaxError err;
    // The lexer's UTF-8 and NUL checks run before anything else; a comment keeps the rest inert.
    std::string probe = "#";
    for (char c : s) probe += (c == '\n' || c == '\r') ? ' ' : c;
    return tokenizePython(probe, tokens, err);
}

std::string lower(std::string_view s) {
    std::string out;
    for (char c : s) out += (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c;
    return out;
}

}  // namespace

std::vector<Assignment> parseConfigText(std::string_view text, std::string_view fileName,
                                        std::vector<ConfigDiagnostic>& diagnostics) {
    std::vector<Assignment> out;
    std::vector<PyToken> tokens;
    PySyntaxError lexError;
    const bool lexed = tokenizePython(text, tokens, lexError);
    // Statements before a lexical error are still checked, so one run reports as much as it can.
    StatementParser(tokens, fileName, diagnostics, out).run();
    if (!lexed) {
        ConfigDiagnostic d;
        d.file = std::string(fileName);
        d.line = lexError.line;
        d.message = lexError.message;
        diagnostics.push_back(std::move(d));
    }
    return out;
}

std::optional<Assignment> parseOverride(std::string_view arg, std::vector<ConfigDiagnostic>& diagnostics) {
    auto fail = [&](std::string message) -> std::optional<Assignment> {
        ConfigDiagnostic d;
        d.file = "<command line>";
        d.message = std::move(message);
        diagnostics.push_back(std::move(d));
        return std::nullopt;
    };
    if (arg.substr(0, 2) != "--")
        return fail(fmt::format("'{}' is not an option: write --Class.trait=value", arg));
    const std::string_view rest = arg.substr(2);
    const std::size_t eq = rest.find('=');
    const std::string_view name = rest.substr(0, eq);
    const std::size_t dot = name.find('.');
    if (dot == std::string_view::npos || !isIdentifier(name.substr(0, dot)) ||
        !isIdentifier(name.substr(dot + 1)))
        return fail(fmt::format("--{} does not name a trait: write --Class.trait=value", name));
    if (eq == std::string_view::npos)
        return fail(
            fmt::format("--{} needs a value: write --{}=value (hubd accepts only the '=' form)", name, name));

    Assignment a;
    a.cls = std::string(name.substr(0, dot));
    a.trait = std::string(name.substr(dot + 1));
    a.file = "<command line>";
    a.line = 0;
    const std::string_view text = rest.substr(eq + 1);
    if (!validUtf8(text))
        return fail(fmt::format("the value of --{} is not valid UTF-8 or contains a NUL byte", name));

    auto plainString = [&] {
        a.value = PyValue{};
        a.value.kind = PyValue::Kind::Str;
        a.value.str = std::string(text);
    };
    const TraitInfo* info = findTrait(a.cls, a.trait);
    const std::string type = info ? info->type : "";
    PySyntaxError err;
    if (type == "Unicode") {
        // traitlets' Unicode.from_string: verbatim unless the whole value is quoted.
        const bool quoted = text.size() >= 2 && (text[0] == '\'' || text[0] == '"') && text.back() == text[0];
        auto literal = quoted ? parsePyLiteral(text, err) : std::nullopt;
        if (literal && literal->kind == PyValue::Kind::Str)
            a.value = std::move(*literal);
        else
            plainString();
        return a;
    }
    if (type == "Bool") {
        // traitlets' Bool.from_string accepts true/false/1/0 in any case.
        const std::string l = lower(text);
        if (l == "true" || l == "1" || l == "false" || l == "0") {
            a.value.kind = PyValue::Kind::Bool;
            a.value.boolean = l == "true" || l == "1";
            return a;
        }
    }
    if (auto literal = parsePyLiteral(text, err)) {
        a.value = std::move(*literal);
        return a;
    }
    plainString();
    if (type == "List" || type == "Set" || type == "Command") {
        // A single bare item, as traitlets reads --Spawner.cmd=jupyterhub-singleuser.
        PyValue list;
        list.kind = PyValue::Kind::List;
        list.items.push_back(std::move(a.value));
        a.value = std::move(list);
    }
    return a;
}

}  // namespace hub
