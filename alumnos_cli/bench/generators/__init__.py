"""One load from several k6 hosts, merged into one run (`bench --generator`)."""
