"""A multi-agent customer support desk written against litellm, with planted weaknesses.

Agents: ``triage`` (looks the order up, routes the ticket), ``researcher`` (searches the
knowledge base, which includes an untrusted community forum), ``writer`` (issues refunds,
e-mails the customer). A shared :class:`mattrace.Memory` carries findings and customer
records between them. One forum post carries an injected instruction; the offline script
makes the writer fall for it, which is the kind of failure mattrace exists to catch.

Offline it runs on the scripted model ``mattrace/support_desk``; set ``MATTRACE_MODEL`` to
any litellm model name (plus that provider's API key) to run it live, unchanged.
"""

from mattrace.apps.demo.support_desk.app import TICKETS, TicketResult, handle_ticket, model_name

__all__ = ["TICKETS", "TicketResult", "handle_ticket", "model_name"]
