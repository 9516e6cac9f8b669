"""What an index was built with, recorded in Milvus collection properties so any reader can tell."""

import hashlib
import json
from dataclasses import asdict, dataclass

PROPERTY_PREFIX = "rag."
# 2: rows carry their owning source in a field of their own; 3: and their access labels (groups, tenant)
SCHEMA_VERSION = 3
LABELLED_SCHEMA = 3
DATA_VERSION_KEY = f"{PROPERTY_PREFIX}data_version"
COMPLETE_KEY = f"{PROPERTY_PREFIX}complete"
# Set before a sync's first write and cleared by the data-version bump that ends it: a sync that died between the
# two leaves it set, and the next sync then bumps the data version even if it finds nothing left to write.
SYNC_PENDING_KEY = f"{PROPERTY_PREFIX}sync_pending"
# pipeline.hybrid_alpha: auto: the fusion weight chosen for the version on its probe set, and why (JSON)
HYBRID_ALPHA_KEY = f"{PROPERTY_PREFIX}hybrid_alpha"
HYBRID_ALPHA_EVIDENCE_KEY = f"{PROPERTY_PREFIX}hybrid_alpha_evidence"
STATE_KEYS = (DATA_VERSION_KEY, COMPLETE_KEY, SYNC_PENDING_KEY)


@dataclass(frozen=True)
class IndexVersion:
    """Two indexes with the same fingerprint hold interchangeable vectors; any change needs a new collection."""

    model: str
    dimension: int
    metric_type: str
    index_type: str
    M: int
    efConstruction: int
    num_shards: int
    chunking: str
    lexical: str = "none"  # "milvus": a BM25 function and sparse field live in the collection
    schema: int = SCHEMA_VERSION

    @property
    def labelled(self) -> bool:
        """Its rows carry access labels; an older version's are all the default group's and tenant's."""
        return self.schema >= LABELLED_SCHEMA

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:16]

    def to_properties(self) -> dict[str, str]:
        return {f"{PROPERTY_PREFIX}{key}": str(value) for key, value in asdict(self).items()} | {
            f"{PROPERTY_PREFIX}fingerprint": self.fingerprint
        }

    @classmethod
    def from_properties(cls, properties: dict[str, str]) -> "IndexVersion | None":
        """None for a collection this project did not create (no recorded version)."""
        values = {
            k[len(PROPERTY_PREFIX) :]: v
            for k, v in properties.items()
            if k.startswith(PROPERTY_PREFIX) and k not in STATE_KEYS
        }
        try:
            return cls(
                model=values["model"],
                dimension=int(values["dimension"]),
                metric_type=values["metric_type"],
                index_type=values["index_type"],
                M=int(values["M"]),
                efConstruction=int(values["efConstruction"]),
                num_shards=int(values["num_shards"]),
                chunking=values["chunking"],
                lexical=values.get("lexical", "none"),
                schema=int(values.get("schema", 1)),
            )
        except (KeyError, ValueError):
            return None


@dataclass(frozen=True)
class CollectionState:
    """What a collection version holds now: readers key caches on ``data_version``, the alias moves only to
    ``complete`` versions (full, and checked against what was synced into them)."""

    collection: str
    version: IndexVersion | None
    data_version: int
    complete: bool
    sync_pending: bool = False  # a sync wrote rows and has not recorded a data version for them yet
    hybrid_alpha: float | None = None  # chosen for this version (pipeline.hybrid_alpha: auto); None: none chosen

    @classmethod
    def from_properties(cls, collection: str, properties: dict[str, str]) -> "CollectionState":
        return cls(
            collection=collection,
            version=IndexVersion.from_properties(properties),
            data_version=int(properties.get(DATA_VERSION_KEY, 0)),
            # Versions made before completeness was recorded were only ever promoted complete.
            complete=properties.get(COMPLETE_KEY, "true") == "true",
            sync_pending=properties.get(SYNC_PENDING_KEY, "false") == "true",
            hybrid_alpha=float(properties[HYBRID_ALPHA_KEY]) if HYBRID_ALPHA_KEY in properties else None,
        )
