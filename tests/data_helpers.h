// Helpers for the data-reader tests: an LMDB written the way LSUN's are.
#pragma once
#include <lmdb.h>

#include <string>
#include <utility>
#include <vector>

#include "helpers.h"

namespace wn::test {

// Writes an LMDB environment in dir (which must exist) holding the given key/value pairs.
inline void write_lmdb(const std::string& dir, const std::vector<std::pair<std::string, std::string>>& kv) {
  MDB_env* env;
  REQUIRE(mdb_env_create(&env) == 0);
  mdb_env_set_mapsize(env, 1 << 24);
  REQUIRE(mdb_env_open(env, dir.c_str(), 0, 0664) == 0);
  MDB_txn* txn;
  MDB_dbi dbi;
  REQUIRE(mdb_txn_begin(env, nullptr, 0, &txn) == 0);
  REQUIRE(mdb_dbi_open(txn, nullptr, 0, &dbi) == 0);
  for (const auto& [k, v] : kv) {
    MDB_val key{k.size(), const_cast<char*>(k.data())}, val{v.size(), const_cast<char*>(v.data())};
    REQUIRE(mdb_put(txn, dbi, &key, &val, 0) == 0);
  }
  REQUIRE(mdb_txn_commit(txn) == 0);
  mdb_env_close(env);
}

}  // namespace wn::test
