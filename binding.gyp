{
  "targets": [
    {
      "target_name": "fd_dup",
      "sources": ["native/fd_dup.c"]
    }
  ]
}
