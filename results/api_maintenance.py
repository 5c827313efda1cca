"""The JSON API of quiet periods (``jobs.maintenance``): maintenance windows and the "pause all schedules" switch.

Members read the global windows and their domains' (the windows their jobs obey); domain administrators add,
change and delete their domains' windows; system administrators every window and the pause. Other domains'
windows answer 404, like every object outside the caller's domains.
"""
from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from jobs import access, maintenance
from jobs.maintenance import MaintenanceWindow, SchedulePause
from jobs.models import Domain

WINDOW_FIELDS = ["name", "domain", "active", "kind", "starts_at", "ends_at", "weekdays", "start_time", "end_time",
                 "cron", "duration_minutes", "timezone", "note"]


class WindowSerializer(serializers.ModelSerializer):
    """A window in and out; the model's own ``clean`` checks each kind's fields (errors name the field)."""

    domain = serializers.SlugRelatedField(slug_field="slug", queryset=Domain.objects.none(), allow_null=True,
                                          required=False)
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    when = serializers.CharField(source="describe", read_only=True)

    class Meta:
        model = MaintenanceWindow
        fields = ["id", *WINDOW_FIELDS, "when", "created_by"]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        request = self.context.get("request")
        if request is not None:  # a window goes only where its author edits: no other domain is even looked up
            self.fields["domain"].queryset = access.editable_domains(request.user)

    def validate(self, attrs: dict) -> dict:
        window = MaintenanceWindow(**{**self._current(), **attrs})
        self._check_domain(window.domain)
        try:
            window.clean()
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.message_dict) from None
        return attrs

    def _check_domain(self, domain: Domain | None) -> None:
        """Global windows are system administrators' (a domain admin's domains are the field's only choices)."""
        if domain is None and not access.is_system_admin(self.context["request"].user):
            raise serializers.ValidationError({"domain": ["Only a system administrator may make a global window; "
                                                          "give your domain's slug."]})

    def _current(self) -> dict:
        if self.instance is None:
            return {}
        return {name: getattr(self.instance, name) for name in WINDOW_FIELDS}


def visible_windows(user) -> QuerySet[MaintenanceWindow]:
    return MaintenanceWindow.objects.select_related("domain", "created_by").visible_to(user)


def _may_edit(user, window: MaintenanceWindow) -> None:
    if not access.has_role_in(user, window.domain_id, access.EDIT_ROLES):
        raise exceptions.PermissionDenied("You may read this window but not change it.")


class WindowListView(APIView):
    def get(self, request):
        return Response(WindowSerializer(visible_windows(request.user), many=True).data)

    def post(self, request):
        if not access.request_edits_somewhere(request):
            raise exceptions.PermissionDenied("Only administrators add maintenance windows.")
        body = WindowSerializer(data=request.data, context={"request": request})
        body.is_valid(raise_exception=True)
        window = body.save(created_by=request.user)
        return Response(WindowSerializer(window).data, status=status.HTTP_201_CREATED)


class WindowView(APIView):
    def get(self, request, window_id: int):
        return Response(WindowSerializer(get_object_or_404(visible_windows(request.user), pk=window_id)).data)

    def patch(self, request, window_id: int):
        window = get_object_or_404(visible_windows(request.user), pk=window_id)
        _may_edit(request.user, window)
        body = WindowSerializer(window, data=request.data, partial=True, context={"request": request})
        body.is_valid(raise_exception=True)
        return Response(WindowSerializer(body.save()).data)

    def delete(self, request, window_id: int):
        window = get_object_or_404(visible_windows(request.user), pk=window_id)
        _may_edit(request.user, window)
        window.delete()
        return Response(status=status.HTTP_204_NO_CONTENT)


class PauseRequest(serializers.Serializer):
    reason = serializers.CharField(max_length=300, help_text="Why every schedule stops (shown on every page).")


def pause_state() -> dict:
    pause: SchedulePause | None = maintenance.current_pause()
    if pause is None:
        return {"paused": False}
    return {"paused": True, "reason": pause.reason, "paused_at": pause.paused_at,
            "paused_by": pause.paused_by.get_username() if pause.paused_by_id else None}


class PauseView(APIView):
    """``GET``: is every schedule paused (members); ``POST {"reason"}`` pauses, ``DELETE`` resumes (system
    administrators). A second pause answers 409, as does a resume with nothing paused."""

    def get(self, request):
        if not access.is_member(request.user):
            raise exceptions.PermissionDenied("Only members of a domain see the schedules' state.")
        return Response(pause_state())

    def post(self, request):
        self._system_admins_only(request)
        body = PauseRequest(data=request.data)
        body.is_valid(raise_exception=True)
        if maintenance.pause_all(request.user, body.validated_data["reason"]) is None:
            return Response({"errors": {"reason": ["Schedules are paused already."]}}, status=status.HTTP_409_CONFLICT)
        return Response(pause_state(), status=status.HTTP_201_CREATED)

    def delete(self, request):
        self._system_admins_only(request)
        if not maintenance.resume_all(request.user):
            return Response({"errors": {"paused": ["Schedules are not paused."]}}, status=status.HTTP_409_CONFLICT)
        return Response(pause_state())

    @staticmethod
    def _system_admins_only(request) -> None:
        if not access.is_system_admin(request.user):
            raise exceptions.PermissionDenied("Only a system administrator pauses or resumes every schedule.")
