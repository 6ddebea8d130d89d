"""Where the project's own files are, wherever it is checked out."""

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SCHEMAS_DIR = PROJECT_ROOT / "schemas"
DEPLOY_DIR = PROJECT_ROOT / "deploy"
ESTABLISHMENTS_CSV = DEPLOY_DIR / "establishments.csv"
TOPICS_TOML = DEPLOY_DIR / "topics.toml"
