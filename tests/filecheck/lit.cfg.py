# lit configuration for tracec's filecheck tests: `lit tests/filecheck -v`.
import os
import sys

import lit.formats

config.name = "tracec"
config.test_format = lit.formats.ShTest(execute_external=False)
config.suffixes = [".mlir"]
config.test_source_root = os.path.dirname(__file__)
bindir = os.path.dirname(sys.executable)
config.environment["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")
config.environment["TRACEC_CACHE"] = "0"
config.excludes = ["Inputs"]
