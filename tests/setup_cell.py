# Setup: installs course_pkg if it is missing (e.g. in Colab), then prints the versions.
import importlib.util, os, subprocess, sys, tempfile
if importlib.util.find_spec("course_pkg") is None:
    _src = os.environ.get("COURSE_PKG_SOURCE",
                          "git+https://github.com/attention-course/attention-course")
    _env = dict(os.environ, GIT_TERMINAL_PROMPT="0",   # a stalled network gives up
                GIT_HTTP_LOW_SPEED_LIMIT="1000", GIT_HTTP_LOW_SPEED_TIME="15")
    _log = tempfile.TemporaryFile("w+")
    try:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--timeout", "15",
                        "--retries", "1", _src], check=True, timeout=120, env=_env,
                       stdout=_log, stderr=subprocess.STDOUT)
    except (OSError, subprocess.SubprocessError) as _err:
        _log.seek(0)
        _out = [s.strip() for s in _log.read().splitlines() if s.strip()] or [str(_err)]
        _why = next((s for s in _out if s.startswith(("fatal:", "ERROR:"))), _out[-1])
        _msg = (f"Could not install course_pkg from {_src}\n  ({_why[:150]})\n"
                "No network here, or the server did not answer. Two ways out:\n"
                "  1. point COURSE_PKG_SOURCE at a checkout or a .whl file, e.g.\n"
                "     os.environ['COURSE_PKG_SOURCE'] = '/content/attention-course'\n"
                "  2. or at a URL that works, e.g. a fork of the course:\n"
                "     'git+https://github.com/<you>/attention-course'\n"
                "then run this cell again.")
        if "IPython" not in sys.modules:   # plain Python: the message, exit status 1
            sys.exit(_msg)

        class CourseSetupError(Exception):
            def _render_traceback_(self):   # Jupyter shows the message alone
                return [str(self)]

        raise CourseSetupError(_msg) from None
    importlib.invalidate_caches()
import course_pkg
course_pkg.banner()
