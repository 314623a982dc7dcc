"""TF Serving's `models.config` (a ModelServerConfig in protobuf text format): write, read, apply.

    model_config_list {
      config {
        name: "fashion"
        base_path: "/abs/path/fashion"
        model_platform: "tensorflow"
        model_version_policy { specific { versions: 1 versions: 2 } }
      }
    }

Version policies are TF Serving's: `latest { num_versions: N }` (the default, N = 1), `all {}`,
`specific { versions: ... }`. `read_models_config` parses the subset of text format that such a
file uses (nested messages, scalar fields, repeated fields, # comments).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["ModelConfig", "write_models_config", "read_models_config", "select_versions", "available_versions"]

POLICIES = ("latest", "all", "specific")


@dataclass
class ModelConfig:
    name: str
    base_path: str
    policy: str = "latest"                      # latest | all | specific
    num_versions: int = 1                       # for latest
    versions: list[int] = field(default_factory=list)  # for specific

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise ValueError(f"version policy must be one of {POLICIES}, got {self.policy!r}")
        if self.policy == "specific" and not self.versions:
            raise ValueError(f"model {self.name!r}: a specific version policy needs at least one version")
        if self.policy == "latest" and self.num_versions < 1:
            raise ValueError(f"model {self.name!r}: latest num_versions must be >= 1, got {self.num_versions}")


def _policy_text(cfg: ModelConfig) -> str:
    if cfg.policy == "latest":
        return f"latest {{ num_versions: {cfg.num_versions} }}"
    if cfg.policy == "all":
        return "all {}"
    return "specific { " + " ".join(f"versions: {v}" for v in cfg.versions) + " }"


def write_models_config(path: str | Path, configs: list[ModelConfig]) -> Path:
    """Write a models.config for `configs` (base paths made absolute, as TF Serving requires)."""
    lines = ["model_config_list {"]
    for cfg in configs:
        lines += ["  config {", f'    name: "{cfg.name}"', f'    base_path: "{Path(cfg.base_path).resolve()}"',
                  '    model_platform: "tensorflow"', f"    model_version_policy {{ {_policy_text(cfg)} }}", "  }"]
    lines.append("}")
    path = Path(path)
    path.write_text("\n".join(lines) + "\n")
    return path


_TOKEN = re.compile(r'\s*(?:#[^\n]*|([A-Za-z_][A-Za-z0-9_]*)|("(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\')|'
                    r'(-?[0-9][0-9.eE+-]*)|([{}:<>]))')


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            if text[pos:].strip() == "":
                break
            raise ValueError(f"models.config: cannot parse at character {pos}: {text[pos:pos + 30]!r}")
        pos = m.end()
        ident, string, number, punct = m.groups()
        if ident is not None:
            out.append(("ident", ident))
        elif string is not None:
            out.append(("value", string[1:-1].encode().decode("unicode_escape")))
        elif number is not None:
            out.append(("value", float(number) if any(c in number for c in ".eE") else int(number)))
        elif punct is not None:
            out.append(("punct", {"<": "{", ">": "}"}.get(punct, punct)))
    return out


def _parse_message(tokens: list[tuple[str, str]], i: int, closing: bool) -> tuple[dict, int]:
    msg: dict[str, list] = {}
    while i < len(tokens):
        kind, tok = tokens[i]
        if kind == "punct" and tok == "}":
            if not closing:
                raise ValueError("models.config: unbalanced '}'")
            return msg, i + 1
        if kind != "ident":
            raise ValueError(f"models.config: expected a field name, got {tok!r}")
        i += 1
        if i < len(tokens) and tokens[i] == ("punct", ":"):
            i += 1
        if i < len(tokens) and tokens[i] == ("punct", "{"):
            value, i = _parse_message(tokens, i + 1, closing=True)
        elif i < len(tokens) and tokens[i][0] in ("value", "ident"):
            value, i = tokens[i][1], i + 1  # an enum value is an identifier
        else:
            raise ValueError(f"models.config: field {tok!r} has no value")
        msg.setdefault(tok, []).append(value)
    if closing:
        raise ValueError("models.config: missing '}'")
    return msg, i


def read_models_config(path: str | Path) -> list[ModelConfig]:
    """Parse a models.config file into ModelConfig entries (clear errors on malformed input)."""
    root, _ = _parse_message(_tokens(Path(path).read_text()), 0, closing=False)
    lists = root.get("model_config_list")
    if not lists:
        raise ValueError(f"{path}: no model_config_list")
    configs = []
    for entry in lists[0].get("config", []):
        name, base = entry.get("name", [None])[0], entry.get("base_path", [None])[0]
        if not name or not base:
            raise ValueError(f"{path}: every config needs a name and a base_path, got {entry}")
        platform = entry.get("model_platform", ["tensorflow"])[0]
        if platform != "tensorflow":
            raise ValueError(f"{path}: model {name!r} has platform {platform!r}; only 'tensorflow' is served")
        policy = entry.get("model_version_policy", [{}])[0]
        if "specific" in policy:
            cfg = ModelConfig(name, base, "specific", versions=[int(v) for v in policy["specific"][0].get("versions", [])])
        elif "all" in policy:
            cfg = ModelConfig(name, base, "all")
        else:
            latest = policy.get("latest", [{}])[0]
            cfg = ModelConfig(name, base, "latest", num_versions=int(latest.get("num_versions", [1])[0]))
        configs.append(cfg)
    if not configs:
        raise ValueError(f"{path}: model_config_list holds no config")
    return configs


def available_versions(base_path: str | Path) -> list[int]:
    """The numeric version directories under base_path holding a saved_model.pb, ascending."""
    base = Path(base_path)
    if not base.is_dir():
        return []
    return sorted(int(p.name) for p in base.iterdir()
                  if p.is_dir() and p.name.isdigit() and (p / "saved_model.pb").exists())


def select_versions(cfg: ModelConfig, available: list[int]) -> list[int]:
    """The versions TF Serving would load under cfg's policy, ascending. A specific version that is
    not on disk is an error (TF Serving would keep waiting for it)."""
    available = sorted(available)
    if cfg.policy == "all":
        return available
    if cfg.policy == "latest":
        return available[-cfg.num_versions:]
    missing = sorted(set(cfg.versions) - set(available))
    if missing:
        raise FileNotFoundError(f"model {cfg.name!r}: versions {missing} requested but not found under {cfg.base_path}")
    return sorted(set(cfg.versions))
