"""Personal data under control: erasure with a keyed-hash deny list, and role views."""
