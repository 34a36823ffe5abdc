// SPDX-License-Identifier: BSD-3-Clause
// The internal CAs' files and the certificates they sign (OpenSSL 3).
#include "internal_ca.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "hubcore/config.h"

namespace hubd {

namespace {

constexpr long kCaYears = 10;
constexpr size_t kMaxCommonName = 64;  // ub-common-name (RFC 5280)
constexpr size_t kMaxFileBytes = 64 * 1024;

struct BioFree {
    void operator()(BIO* b) const noexcept { BIO_free(b); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;

[[noreturn]] void fail(std::string sentence) {
    ERR_clear_error();
    throw InternalCaError(std::move(sentence));
}

std::string toPem(X509* cert, EVP_PKEY* key) {
    BioPtr bio(BIO_new(BIO_s_mem()));
    bool ok = bio && (cert ? PEM_write_bio_X509(bio.get(), cert)
                           : PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr));
    char* data = nullptr;
    long n = ok ? BIO_get_mem_data(bio.get(), &data) : 0;
    if (n <= 0) fail("cannot encode an internal TLS certificate or key as PEM");
    return std::string(data, static_cast<size_t>(n));
}

// A directory only the hub user can enter: created if missing, refused if wider.
void ensurePrivateDir(const std::string& dir) {
    if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
        fail(
            fmt::format("cannot create {} for internal TLS: {}; create it (mode 700) or set "
                        "JupyterHub.internal_certs_location",
                        dir, std::strerror(errno)));
    struct stat st {};
    if (::lstat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
        fail(fmt::format("{} (JupyterHub.internal_certs_location) is not a directory", dir));
    if (st.st_uid != ::geteuid())
        fail(fmt::format("{} is owned by uid {}, not by the hub user: chown it to the hub user", dir,
                         st.st_uid));
    if (st.st_mode & 077)
        fail(fmt::format("{} can be entered by other users (mode {:04o}): run chmod 700 {}", dir,
                         st.st_mode & 07777, dir));
}

// Reads a file that must be the hub user's and private. "" if it does not exist.
std::string readPrivate(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) return {};
        fail(fmt::format("cannot read {}: {}", path, std::strerror(errno)));
    }
    struct Closer {
        int fd;
        ~Closer() { ::close(fd); }
    } closer{fd};
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size <= 0 ||
        st.st_size > static_cast<off_t>(kMaxFileBytes))
        fail(fmt::format("{} is not a usable internal TLS file: remove it to make a new CA", path));
    if (st.st_uid != ::geteuid() || (st.st_mode & 077))
        fail(
            fmt::format("{} must be owned by the hub user and private (mode {:04o}): run chown <hub user> {} "
                        "&& chmod 600 {}",
                        path, st.st_mode & 07777, path, path));
    std::string content(static_cast<size_t>(st.st_size), '\0');
    if (::read(fd, content.data(), content.size()) != static_cast<ssize_t>(content.size()))
        fail(fmt::format("cannot read {}: {}", path, std::strerror(errno)));
    return content;
}

void writePrivate(const std::string& path, const std::string& content) {
    ::unlink(path.c_str());  // a leftover of an interrupted start, in our private directory
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    bool ok = fd >= 0 &&
              ::write(fd, content.data(), content.size()) == static_cast<ssize_t>(content.size()) &&
              ::fsync(fd) == 0;
    int err = errno;
    if (fd >= 0) ::close(fd);
    if (!ok) fail(fmt::format("cannot write {}: {}", path, std::strerror(err)));
}

void addExtension(X509* cert, X509* issuer, int nid, const char* value) {
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
    if (!ext || X509_add_ext(cert, ext, -1) != 1) {
        X509_EXTENSION_free(ext);
        fail(fmt::format("cannot add the {} extension to an internal TLS certificate", OBJ_nid2sn(nid)));
    }
    X509_EXTENSION_free(ext);
}

// Subject, random serial, validity, public key: everything but extensions and signature.
X509Ptr newCertificate(std::string_view commonName, X509* issuer, EVP_PKEY* key, long notBeforeSeconds,
                       long notAfterSeconds) {
    X509Ptr cert(X509_new());
    unsigned char serial[16];
    if (!cert || RAND_bytes(serial, sizeof serial) != 1) fail("cannot create an internal TLS certificate");
    serial[0] &= 0x7f;  // positive
    BIGNUM* bn = BN_bin2bn(serial, sizeof serial, nullptr);
    bool ok = bn && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get()));
    BN_free(bn);
    X509_NAME* name = X509_get_subject_name(cert.get());
    ok = ok && X509_set_version(cert.get(), 2) &&
         X509_gmtime_adj(X509_getm_notBefore(cert.get()), notBeforeSeconds) &&
         X509_gmtime_adj(X509_getm_notAfter(cert.get()), notAfterSeconds) &&
         X509_set_pubkey(cert.get(), key) &&
         X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_UTF8,
                                    reinterpret_cast<const unsigned char*>(commonName.data()),
                                    static_cast<int>(commonName.size()), -1, 0) &&
         X509_set_issuer_name(cert.get(), issuer ? X509_get_subject_name(issuer) : name);
    if (!ok) fail(fmt::format("cannot build an internal TLS certificate for '{}'", commonName));
    return cert;
}

PkeyPtr newKey() {
    PkeyPtr key(EVP_EC_gen("P-256"));
    if (!key) fail("cannot generate an EC P-256 key for internal TLS");
    return key;
}

}  // namespace

void X509Free::operator()(X509* x) const noexcept {
    X509_free(x);
}
void PkeyFree::operator()(EVP_PKEY* k) const noexcept {
    EVP_PKEY_free(k);
}

InternalCa InternalCa::openOrCreate(const std::string& dir, const std::string& name, bool& created) {
    ensurePrivateDir(dir);
    const std::string certPath = dir + "/" + name + "-ca.crt";
    const std::string keyPath = dir + "/" + name + "-ca.key";
    std::string certText = readPrivate(certPath);
    std::string keyText = readPrivate(keyPath);
    InternalCa ca;
    created = certText.empty() && keyText.empty();
    if (created) {
        ca.key_ = newKey();
        ca.cert_ = newCertificate("hubd internal " + name + " CA", nullptr, ca.key_.get(), -3600,
                                  kCaYears * 365 * 86400);
        addExtension(ca.cert_.get(), ca.cert_.get(), NID_basic_constraints, "critical,CA:TRUE,pathlen:0");
        addExtension(ca.cert_.get(), ca.cert_.get(), NID_key_usage, "critical,keyCertSign,cRLSign");
        addExtension(ca.cert_.get(), ca.cert_.get(), NID_subject_key_identifier, "hash");
        if (X509_sign(ca.cert_.get(), ca.key_.get(), EVP_sha256()) <= 0)
            fail(fmt::format("cannot sign the internal {} CA", name));
        // The key first: a certificate without its key is never left behind.
        writePrivate(keyPath + ".new", toPem(nullptr, ca.key_.get()));
        writePrivate(certPath + ".new", toPem(ca.cert_.get(), nullptr));
        if (::rename((keyPath + ".new").c_str(), keyPath.c_str()) != 0 ||
            ::rename((certPath + ".new").c_str(), certPath.c_str()) != 0)
            fail(fmt::format("cannot store the internal {} CA in {}: {}", name, dir, std::strerror(errno)));
    } else {
        if (certText.empty() || keyText.empty())
            fail(fmt::format(
                "{} is missing: remove {} and {} to make a new {} CA (running servers must then be "
                "restarted)",
                certText.empty() ? certPath : keyPath, certPath, keyPath, name));
        BioPtr certBio(BIO_new_mem_buf(certText.data(), static_cast<int>(certText.size())));
        BioPtr keyBio(BIO_new_mem_buf(keyText.data(), static_cast<int>(keyText.size())));
        ca.cert_.reset(PEM_read_bio_X509(certBio.get(), nullptr, nullptr, nullptr));
        ca.key_.reset(PEM_read_bio_PrivateKey(keyBio.get(), nullptr, nullptr, nullptr));
        std::fill(keyText.begin(), keyText.end(), '\0');
        if (!ca.cert_ || !ca.key_ || X509_check_private_key(ca.cert_.get(), ca.key_.get()) != 1 ||
            X509_check_ca(ca.cert_.get()) < 1)
            fail(
                fmt::format("{} and {} are not a CA certificate and its key: remove both to make a new {} CA",
                            certPath, keyPath, name));
        if (X509_cmp_current_time(X509_get0_notAfter(ca.cert_.get())) <= 0)
            fail(
                fmt::format("the internal {} CA {} has expired: remove it and {} to make a new one (running "
                            "servers must then be restarted)",
                            name, certPath, keyPath));
    }
    ca.certPem_ = toPem(ca.cert_.get(), nullptr);
    ERR_clear_error();
    return ca;
}

Leaf InternalCa::issue(std::string_view commonName, const std::vector<std::string>& altNames,
                       std::chrono::hours validity) const {
    if (commonName.empty() || commonName.size() > kMaxCommonName)
        fail(
            fmt::format("internal TLS certificates name their owner in the CN, which holds 1 to {} bytes: "
                        "'{}' does not fit; use a shorter user name or turn JupyterHub.internal_ssl off",
                        kMaxCommonName, commonName));
    std::vector<std::string> names = {"DNS:localhost", "IP:127.0.0.1"};
    for (const auto& n : altNames)
        if (std::find(names.begin(), names.end(), n) == names.end()) names.push_back(n);
    Leaf leaf;
    leaf.key = newKey();
    leaf.cert = newCertificate(commonName, cert_.get(), leaf.key.get(), -300,
                               static_cast<long>(std::chrono::seconds(validity).count()));
    X509* c = leaf.cert.get();
    addExtension(c, cert_.get(), NID_basic_constraints, "critical,CA:FALSE");
    addExtension(c, cert_.get(), NID_key_usage, "critical,digitalSignature");
    // Both: a server is also a client of the hub API, and hubd a client of servers.
    addExtension(c, cert_.get(), NID_ext_key_usage, "serverAuth,clientAuth");
    addExtension(c, cert_.get(), NID_subject_key_identifier, "hash");
    addExtension(c, cert_.get(), NID_authority_key_identifier, "keyid:always");
    // Built name by name, never from a joined string, so no name can add another.
    GENERAL_NAMES* san = sk_GENERAL_NAME_new_null();
    for (const auto& n : names) {
        if (std::string why = hub::checkAltName(n); !why.empty()) {
            GENERAL_NAMES_free(san);
            fail("subject alternative name " + why);
        }
        bool ip = n.starts_with("IP:");
        GENERAL_NAME* g = a2i_GENERAL_NAME(nullptr, nullptr, nullptr, ip ? GEN_IPADD : GEN_DNS,
                                           n.substr(ip ? 3 : 4).c_str(), 0);
        if (!g || !sk_GENERAL_NAME_push(san, g)) {
            GENERAL_NAME_free(g);
            GENERAL_NAMES_free(san);
            fail(fmt::format("cannot add {} to an internal TLS certificate", n));
        }
    }
    int added = X509_add1_ext_i2d(c, NID_subject_alt_name, san, 0, X509V3_ADD_DEFAULT);
    GENERAL_NAMES_free(san);
    if (added != 1 || X509_sign(c, key_.get(), EVP_sha256()) <= 0)
        fail(fmt::format("cannot sign the internal TLS certificate for '{}'", commonName));
    leaf.certPem = toPem(c, nullptr);
    leaf.keyPem = toPem(nullptr, leaf.key.get());
    return leaf;
}

}  // namespace hubd
