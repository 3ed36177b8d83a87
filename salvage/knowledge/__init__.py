"""Knowledge base: versioned, cited data files, their schema, and the loader.

Public API: load_knowledge(), KnowledgeBase and its record types.
"""

from salvage.knowledge.loader import load_knowledge
from salvage.knowledge.model import KnowledgeBase

__all__ = ["KnowledgeBase", "load_knowledge"]
