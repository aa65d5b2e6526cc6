// cpp-httplib as Debian builds it (libcpp-httplib-dev, 0.11): with OpenSSL,
// zlib and Brotli support, which change the layout of its classes. Everyone
// includes httplib through here so every includer agrees with the compiled
// library (its pkg-config Cflags, applied to these files only).
#pragma once

#ifndef CPPHTTPLIB_OPENSSL_SUPPORT
#define CPPHTTPLIB_OPENSSL_SUPPORT
#endif
#ifndef CPPHTTPLIB_ZLIB_SUPPORT
#define CPPHTTPLIB_ZLIB_SUPPORT
#endif
#ifndef CPPHTTPLIB_BROTLI_SUPPORT
#define CPPHTTPLIB_BROTLI_SUPPORT
#endif
#include <httplib.h>
