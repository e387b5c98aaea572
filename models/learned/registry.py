"""The version registry of the learned head: which artifact is which version, where it came from, where it runs.

A folder holds `registry.json` and `versions/<semver>/<artifact>`. Each version records its parent (the version in
service when it was registered), the artifact's sha256, the training data's hash (`dataset_sha256`), seed, config,
metrics and the gate's verdict. `history` is the event log every status is derived from, so `verify()` can replay
it and catch a registry edited by hand. Statuses: candidate -> (gate) rejected | candidate -> canary ->
in_service -> retired (superseded) or rejected (rolled back).

Writes are atomic (temp file + os.replace); a registry that does not validate is an error, never reset.
"""

from __future__ import annotations

import hashlib
import logging
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from models.files import atomic_write
from models.learned.gate import GateResult
from models.paths import cache_root

log = logging.getLogger(__name__)
ENV_VAR = "VIGIA_REGISTRY_DIR"
REGISTRY_FILE = "registry.json"
SCHEMA_VERSION = 1
_SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")

Status = Literal["candidate", "rejected", "canary", "in_service", "retired"]
Action = Literal["register", "gate_passed", "gate_failed", "canary", "all", "rollback"]


class RegistryError(ValueError):
    """A registry operation refused, or a registry file that does not hold."""


def check_semver(version: str) -> str:
    if not _SEMVER.match(version):
        raise RegistryError(f"version {version!r} is not semantic (major.minor.patch, e.g. 1.2.0)")
    return version


def semver_key(version: str) -> tuple[int, int, int]:
    major, minor, patch = check_semver(version).split(".")
    return int(major), int(minor), int(patch)


def bump_version(version: str, bump: Literal["major", "minor", "patch"]) -> str:
    major, minor, patch = semver_key(version)
    if bump == "major":
        return f"{major + 1}.0.0"
    if bump == "minor":
        return f"{major}.{minor + 1}.0"
    if bump == "patch":
        return f"{major}.{minor}.{patch + 1}"
    raise RegistryError(f"bump must be major, minor or patch, not {bump!r}")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class GateRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    passed: bool
    reasons: list[str]
    report: str = Field(description="path of the gate report (gate.json)")


class VersionEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: str
    created_at: datetime
    parent: str | None = Field(description="the version in service when this one was registered")
    artifact: str = Field(min_length=1, description="file name under versions/<version>/")
    artifact_sha256: str
    dataset_sha256: str = Field(description="samples_sha256 of the training data's dataset.json")
    seed: int
    config: dict[str, Any]
    metrics: dict[str, Any]
    gate: GateRecord | None = None
    status: Status = "candidate"
    notes: str = ""

    @field_validator("version")
    @classmethod
    def _semver(cls, value: str) -> str:
        return check_semver(value)

    @field_validator("parent")
    @classmethod
    def _parent_semver(cls, value: str | None) -> str | None:
        return None if value is None else check_semver(value)

    @field_validator("artifact_sha256", "dataset_sha256")
    @classmethod
    def _sha256(cls, value: str) -> str:
        if not _SHA256.match(value):
            raise ValueError(f"{value!r} is not a sha256 (64 lowercase hex digits)")
        return value


class HistoryEvent(BaseModel):
    model_config = ConfigDict(extra="forbid")

    time: datetime
    action: Action
    version: str
    from_version: str | None = None


class RegistryFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_version: Literal[1] = SCHEMA_VERSION
    versions: list[VersionEntry] = []
    history: list[HistoryEvent] = []
    baseline: dict[str, Any] | None = Field(
        default=None, description="the rules-only evaluation summary the gate compares with when nothing is in "
        "service")


def default_root() -> Path:
    """VIGIA_REGISTRY_DIR, else <checkout>/.cache/registry (source checkout), else ~/.cache/vigia/registry."""
    return cache_root("registry", ENV_VAR)


def _now() -> datetime:
    return datetime.now(UTC)


class Registry:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.path = self.root / REGISTRY_FILE

    @classmethod
    def default(cls) -> Registry:
        return cls(default_root())

    # -- file ------------------------------------------------------------------------------------------
    def load(self) -> RegistryFile:
        if not self.path.exists():
            return RegistryFile()
        try:
            return RegistryFile.model_validate_json(self.path.read_bytes())
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            log.error("registry file does not validate", extra={"path": str(self.path)})
            detail = f"{where}: {first['msg']}" if where else first["msg"]
            raise RegistryError(f"{self.path} is corrupt ({detail}); fix or restore it, it is not reset") from exc

    def _save(self, data: RegistryFile) -> None:
        atomic_write(self.path, (data.model_dump_json(indent=2) + "\n").encode())

    @staticmethod
    def _find(data: RegistryFile, version: str) -> VersionEntry:
        for entry in data.versions:
            if entry.version == version:
                return entry
        known = ", ".join(e.version for e in data.versions) or "none"
        raise KeyError(f"version {version} is not in the registry (known: {known})")

    @staticmethod
    def _with_status(data: RegistryFile, status: Status) -> VersionEntry | None:
        return next((e for e in data.versions if e.status == status), None)

    # -- reading ---------------------------------------------------------------------------------------
    def get(self, version: str) -> VersionEntry:
        check_semver(version)
        return self._find(self.load(), version)

    def versions(self) -> list[VersionEntry]:
        return sorted(self.load().versions, key=lambda e: semver_key(e.version))

    def in_service(self) -> VersionEntry | None:
        return self._with_status(self.load(), "in_service")

    def canary(self) -> VersionEntry | None:
        return self._with_status(self.load(), "canary")

    def baseline(self) -> dict[str, Any] | None:
        return self.load().baseline

    def history(self) -> list[HistoryEvent]:
        return self.load().history

    def artifact_path(self, version: str) -> Path:
        entry = self.get(version)
        path = self.root / "versions" / entry.version / entry.artifact
        if not path.is_file():
            raise RegistryError(f"artifact of {version} is missing: {path}")
        actual = file_sha256(path)
        if actual != entry.artifact_sha256:
            log.error("artifact sha256 mismatch", extra={"version": version, "path": str(path)})
            raise RegistryError(f"artifact of {version} does not match its sha256 (registered "
                                f"{entry.artifact_sha256[:12]}, found {actual[:12]}): it was changed after "
                                "registration")
        return path

    # -- writing ---------------------------------------------------------------------------------------
    def register(self, artifact: Path, *, dataset_sha256: str, metrics: dict, seed: int, config: dict,
                 bump: Literal["major", "minor", "patch"] = "minor", notes: str = "") -> VersionEntry:
        """Copy the artifact into versions/<v>/ and record it as a candidate; parent = the version in service."""
        artifact = Path(artifact)
        if not artifact.is_file():
            raise FileNotFoundError(f"artifact {artifact} does not exist")
        data = self.load()
        parent = self._with_status(data, "in_service")
        taken = {e.version for e in data.versions}
        if parent is not None:
            version = bump_version(parent.version, bump)
        elif taken:  # nothing in service yet: go on from the newest candidate so versions never repeat
            version = bump_version(max(taken, key=semver_key), bump)
        else:
            version = "1.0.0"
        while version in taken:  # two candidates from the same parent: the next free number
            version = bump_version(version, bump)
        target = self.root / "versions" / version / artifact.name
        atomic_write(target, artifact.read_bytes())
        entry = VersionEntry(
            version=version, created_at=_now(), parent=parent.version if parent else None, artifact=artifact.name,
            artifact_sha256=file_sha256(target), dataset_sha256=dataset_sha256, seed=seed, config=config,
            metrics=metrics, status="candidate", notes=notes,
        )
        data.versions.append(entry)
        data.history.append(HistoryEvent(time=entry.created_at, action="register", version=version,
                                         from_version=entry.parent))
        self._save(data)
        log.info("version registered", extra={"version": version, "parent": entry.parent})
        return entry

    def set_baseline(self, summary: dict[str, Any]) -> None:
        from models.learned.gate import EvalSummary

        EvalSummary.model_validate(summary)  # a baseline the gate cannot read is refused now, not at gate time
        data = self.load()
        data.baseline = summary
        self._save(data)

    def record_gate(self, version: str, result: GateResult, report_path: Path) -> None:
        data = self.load()
        entry = self._find(data, check_semver(version))
        entry.gate = GateRecord(passed=result.passed, reasons=result.reasons, report=str(report_path))
        if entry.status in ("candidate", "rejected"):
            entry.status = "candidate" if result.passed else "rejected"
        data.history.append(HistoryEvent(time=_now(), action="gate_passed" if result.passed else "gate_failed",
                                         version=version))
        self._save(data)
        log.info("gate recorded", extra={"version": version, "passed": result.passed})

    def check_promotion(self, version: str, stage: Literal["canary", "all"], *, skip_canary: bool = False) -> None:
        """Raises RegistryError when `version` may not go to `stage` (so a rollout can ask before it deploys)."""
        data = self.load()
        entry = self._find(data, check_semver(version))
        if entry.gate is None:
            raise RegistryError(f"{version} has not been through the gate: run `vigia gate --candidate {version}`")
        if not entry.gate.passed:
            raise RegistryError(f"{version} failed the gate: {' '.join(entry.gate.reasons)}")
        if entry.status == "rejected":
            raise RegistryError(f"{version} was rolled back; gate it again before promoting it")
        if stage == "canary":
            if entry.status in ("canary", "in_service"):
                raise RegistryError(f"{version} is already {entry.status}")
            return
        if stage != "all":
            raise RegistryError(f"stage must be canary or all, not {stage!r}")
        if entry.status == "in_service":
            raise RegistryError(f"{version} is already in service")
        was_canary = any(e.action == "canary" and e.version == version for e in data.history)
        if not was_canary and not skip_canary:
            raise RegistryError(f"{version} has not been on canary: promote it to canary first (or skip the "
                                "canary explicitly)")

    def promote(self, version: str, stage: Literal["canary", "all"], *, skip_canary: bool = False) -> VersionEntry:
        self.check_promotion(version, stage, skip_canary=skip_canary)
        data = self.load()
        entry = self._find(data, version)
        if stage == "canary":
            previous = self._with_status(data, "canary")
            if previous is not None:  # one canary at a time: the one it replaces goes back to the bench
                previous.status = "candidate"
            entry.status = "canary"
        else:
            previous = self._with_status(data, "in_service")
            if previous is not None:
                previous.status = "retired"
            entry.status = "in_service"
        data.history.append(HistoryEvent(time=_now(), action=stage, version=version,
                                         from_version=previous.version if previous else None))
        self._save(data)
        log.info("version promoted", extra={"version": version, "stage": stage})
        return entry

    def rollback_target(self) -> VersionEntry:
        """The version a rollback would restore (asked before a deployment, which must go first)."""
        return self._rollback_pair(self.load())[1]

    def _rollback_pair(self, data: RegistryFile) -> tuple[VersionEntry, VersionEntry]:
        current = self._with_status(data, "in_service")
        if current is None:
            raise RegistryError("nothing is in service: there is nothing to roll back")
        stack = _service_stack(data.history)
        if len(stack) < 2 or stack[-1] != current.version:
            raise RegistryError(f"{current.version} is the first version in service: there is no earlier "
                                "version to roll back to")
        return current, self._find(data, stack[-2])

    def rollback(self) -> VersionEntry:
        """The version in service goes back to the one served before it (service history, not the parent)."""
        data = self.load()
        current, restored = self._rollback_pair(data)
        current.status = "rejected"
        restored.status = "in_service"
        canary = self._with_status(data, "canary")
        if canary is not None:  # a canary was judged against the version being withdrawn
            canary.status = "candidate"
        data.history.append(HistoryEvent(time=_now(), action="rollback", version=restored.version,
                                         from_version=current.version))
        self._save(data)
        log.warning("version rolled back", extra={"from": current.version, "to": restored.version})
        return restored

    # -- checking --------------------------------------------------------------------------------------
    def verify(self) -> list[str]:
        """Problems with the chain (empty = it holds): parents, artifacts, cycles, statuses vs. history."""
        data = self.load()
        problems: list[str] = []
        by_version = {e.version: e for e in data.versions}
        if len(by_version) != len(data.versions):
            problems.append("a version is listed twice")
        for entry in data.versions:
            if entry.parent is not None and entry.parent not in by_version:
                problems.append(f"{entry.version}: parent {entry.parent} is not in the registry")
            path = self.root / "versions" / entry.version / entry.artifact
            if not path.is_file():
                problems.append(f"{entry.version}: artifact {path} is missing")
            elif file_sha256(path) != entry.artifact_sha256:
                problems.append(f"{entry.version}: artifact {entry.artifact} does not match its recorded sha256")
            if entry.status in ("canary", "in_service") and not (entry.gate and entry.gate.passed):
                problems.append(f"{entry.version}: is {entry.status} without a passed gate")
        for entry in data.versions:  # walking parents must end: a loop means the manifest was edited
            seen, node = {entry.version}, entry.parent
            while node is not None and node in by_version:
                if node in seen:
                    problems.append(f"{entry.version}: its parent chain has a cycle through {node}")
                    break
                seen.add(node)
                node = by_version[node].parent
        expected = _replay(data.history, problems)
        for version, status in expected.items():
            if version not in by_version:
                problems.append(f"history names {version}, which is not in the registry")
            elif by_version[version].status != status:
                problems.append(f"{version}: status {by_version[version].status} but its history says {status}")
        for version in by_version.keys() - expected.keys():
            problems.append(f"{version}: no register event in the history")
        for status in ("canary", "in_service"):
            holders = [e.version for e in data.versions if e.status == status]
            if len(holders) > 1:
                problems.append(f"more than one version is {status}: {', '.join(holders)}")
        return problems


def _service_stack(history: list[HistoryEvent]) -> list[str]:
    """Versions served, oldest first, with rolled-back ones popped off: the rollback path."""
    stack: list[str] = []
    for event in history:
        if event.action == "all":
            stack.append(event.version)
        elif event.action == "rollback" and stack:
            stack.pop()
    return stack


def _replay(history: list[HistoryEvent], problems: list[str]) -> dict[str, Status]:
    """Statuses as the history says they should be; out-of-order events are reported into `problems`."""
    status: dict[str, Status] = {}
    canary: str | None = None
    serving: list[str] = []
    for event in history:
        v = event.version
        if event.action == "register":
            if v in status:
                problems.append(f"{v} is registered twice in the history")
            status[v] = "candidate"
            continue
        if v not in status:
            problems.append(f"history event {event.action} on {v} before it was registered")
            continue
        if event.action in ("gate_passed", "gate_failed"):
            if status[v] in ("candidate", "rejected"):
                status[v] = "candidate" if event.action == "gate_passed" else "rejected"
        elif event.action == "canary":
            if canary is not None and canary != v:
                status[canary] = "candidate"
            status[v], canary = "canary", v
        elif event.action == "all":
            if serving:
                status[serving[-1]] = "retired"
            if canary == v:
                canary = None
            serving.append(v)
            status[v] = "in_service"
        elif event.action == "rollback":
            if len(serving) < 2 or serving[-2] != v or serving[-1] != event.from_version:
                problems.append(f"rollback from {event.from_version} to {v} does not follow the service history")
            if serving:
                status[serving.pop()] = "rejected"
            status[v] = "in_service"
            if canary is not None:
                status[canary], canary = "candidate", None
    return status

