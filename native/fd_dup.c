/*
 * dup(fd) for Node, which has none: every worker thread listens on its own
 * duplicate of one listening socket. Closing a descriptor closes the socket
 * for every thread that shares that descriptor (libuv closes it when a
 * worker's server handle goes, a crash included); a duplicate of its own
 * lets a worker end without taking the listener from the others.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <node_api.h>

static napi_value Dup(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t fd = -1;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 ||
      napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0) {
    napi_throw_type_error(env, NULL, "dup(fd): fd must be a non-negative integer");
    return NULL;
  }
  int copy = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (copy < 0) {
    napi_throw_error(env, NULL, strerror(errno));
    return NULL;
  }
  napi_value out;
  napi_create_int32(env, copy, &out);
  return out;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  napi_create_function(env, "dup", NAPI_AUTO_LENGTH, Dup, NULL, &fn);
  napi_set_named_property(env, exports, "dup", fn);
  return exports;
}
